"""Subcommands of the model stage (registered on the `gelato` CLI).

``gelato train``          train the VAE-GAN on <samples>/zerobias.h5 and export the firmware model
``gelato export``         re-export the firmware model from saved VAE-GAN weights
``gelato derive-shifts``  propose power-of-two input shifts from a sample, beside the seed's

The heavy imports (TensorFlow) happen inside the handlers so that ``gelato --help`` and
the other stages' commands start quickly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    """Add this stage's subcommands to the CLI."""
    from gelato.model.settings import LossWeights, TrainSettings
    from gelato.model.shifts import DEFAULT_QUANTILE

    defaults, weights = TrainSettings(), LossWeights()
    p = subparsers.add_parser("train", help="train the VAE-GAN on the zero-bias sample and export the firmware model")
    p.add_argument("--samples", type=Path, default=Path("data/samples"), help="folder holding zerobias.h5")
    p.add_argument("--out", type=Path, default=Path("model/default"), help="output folder (default: model/default)")
    p.add_argument("--epochs", type=int, default=defaults.epochs, help="training epochs (default: %(default)s)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default: %(default)s)")
    p.add_argument("--shifts", type=Path, default=None, help="shift table JSON (default: the seed paper's)")
    p.add_argument("--max-events", type=int, default=defaults.max_events,
                   help="use the first N events of zerobias.h5, 0 for all (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="default: %(default)s")
    p.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="default: %(default)s")
    p.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction,
                   help="held-out fraction (default: %(default)s)")
    p.add_argument("--reco-weight", type=float, default=weights.reconstruction,
                   help="weight of the reconstruction MSE (default: %(default)s)")
    p.add_argument("--kl-weight", type=float, default=weights.kl, help="weight of the KL term (default: %(default)s)")
    p.add_argument("--adv-weight", type=float, default=weights.adversarial,
                   help="weight of the adversarial term (default: %(default)s)")
    p.add_argument("--activation-quantizer", default=None,
                   help="QKeras quantizer of the encoder activations (default: FirmwareQuantizers')")
    p.add_argument("--bn-gamma-max", type=float, default=defaults.batchnorm_gamma_max,
                   help="cap on |gamma| of the encoder BatchNorms, 0 for none (default: %(default)s)")
    p.set_defaults(func=_train)  # fmt: skip

    p = subparsers.add_parser("export", help="re-export the firmware model from saved VAE-GAN weights")
    p.add_argument("--weights", type=Path, default=Path("model/default/vaegan_weights.h5"), help="VAE-GAN weights file")
    p.add_argument("--out", type=Path, required=True, help="output folder for firmware_model.h5 and export.json")
    p.add_argument("--samples", type=Path, default=Path("data/samples"), help="folder holding zerobias.h5")
    p.add_argument("--max-events", type=int, default=None,
                   help="events of zerobias.h5 to split (default: as in training.json beside the weights)")
    p.add_argument("--seed", type=int, default=None, help="seed of the split and fine-tune (default: as in training)")
    p.add_argument("--validation-fraction", type=float, default=None, help="default: as in training")
    p.set_defaults(func=_export)

    p = subparsers.add_parser("derive-shifts", help="derive power-of-two input shifts from a sample")
    p.add_argument("file", type=Path, help="event file (e.g. data/samples/zerobias.h5)")
    p.add_argument("--out", type=Path, default=None, help="write the table as JSON here")
    p.add_argument("--quantile", type=float, default=DEFAULT_QUANTILE,
                   help="quantile of |x| over non-zero entries that must fit in [-1, 1] (default: %(default)s)")
    p.add_argument("--max-events", type=int, default=None, help="use the first N events (default: all)")
    p.add_argument("--names", type=Path, default=None,
                   help="feature-name mapping YAML for other file layouts (see docs/inputs.md)")
    p.set_defaults(func=_derive_shifts)  # fmt: skip


def _print_epoch(epoch: int, epochs: int, train: dict, val: dict, seconds: float) -> None:
    print(
        f"epoch {epoch:>3}/{epochs}  loss {train['generator']:.4g} (val {val['generator']:.4g})  "
        f"reco {train['reconstruction']:.4g}  kl {train['kl']:.3g}  adv {train['adversarial']:.3g}  "
        f"disc {train['discriminator']:.3g}  {seconds:.1f} s",
        file=sys.stderr,
        flush=True,
    )


def _train(args: argparse.Namespace) -> int:
    from gelato.model.shifts import load_shifts
    from gelato.model.settings import LossWeights, TrainSettings
    from gelato.model.train import run_training

    shifts = load_shifts(args.shifts)
    settings = TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        validation_fraction=args.validation_fraction,
        max_events=args.max_events or None,
        seed=args.seed,
        loss_weights=LossWeights(args.reco_weight, args.kl_weight, args.adv_weight),
        activation_quantizer=args.activation_quantizer,
        batchnorm_gamma_max=args.bn_gamma_max or None,
    )
    source = str(args.shifts) if args.shifts else "seed (gelato.features.SEED_SHIFTS)"
    summary = run_training(args.samples, args.out, settings, shifts, source, on_epoch=_print_epoch)

    print(f"trained on {summary['sample']['training_events']} events in {summary['timings_s']['train']:.0f} s; "
          f"total {summary['timings_s']['total']:.0f} s")  # fmt: skip
    _print_export_summary(summary["export"])
    print(f"wrote {args.out}/firmware_model.h5, vaegan_weights.h5, shifts.json, training.json, export.json")
    return 0


def _print_export_summary(export: dict) -> None:
    agreement = export["agreement"]["after_finetune"]
    print(f"firmware vs trained encoder score: pearson {agreement['pearson']:.4f}, "
          f"median relative difference {agreement['median_relative_difference']:.3g}")  # fmt: skip
    print("score = sum mu^2 of the firmware model; saturation = events with a quantized ReLU at its top "
          "(relu_0 relu_1); flipped = decisions at the zero-bias 1e-4 threshold changed by saturation")  # fmt: skip
    header = ("sample", "events", "median", "q99", "q99.99", "max", "saturation", "flipped")
    print("{:<12} {:>8} {:>8} {:>8} {:>8} {:>9} {:>15} {:>8}".format(*header))
    for name, stats in export["score_statistics"].items():
        saturation = export["saturation_per_sample"].get(name, export["saturation"] if name == "validation" else {})
        fractions = " ".join(f"{v['events_with_any_saturated_unit']:.2%}" for v in saturation.values())
        flipped = export["saturation_impact"].get(name, {}).get("flipped_decisions")
        flipped_text = f"{flipped:.3%}" if flipped is not None else "-"
        print(f"{name:<12} {stats['events']:>8} {stats['q0.5']:>8.3g} {stats['q0.99']:>8.3g} "
              f"{stats['q0.9999']:>8.4g} {stats['max']:>9.4g} {fractions:>15} {flipped_text:>8}")  # fmt: skip


def _export(args: argparse.Namespace) -> int:
    from gelato.model.export import export_firmware
    from gelato.model.settings import ExportSettings, TrainSettings
    from gelato.model.train import load_training_sample, seed_everything, split_indices
    from gelato.model.vaegan import load_vaegan_weights

    settings = _training_settings_beside(args.weights)
    seed = settings.get("seed", TrainSettings().seed) if args.seed is None else args.seed
    max_events = settings.get("max_events", TrainSettings().max_events) if args.max_events is None else args.max_events
    fraction = args.validation_fraction or settings.get("validation_fraction", TrainSettings().validation_fraction)

    seed_everything(seed)
    model, shifts = load_vaegan_weights(args.weights)
    sample = load_training_sample(args.samples, max_events or None)
    train_idx, val_idx = split_indices(len(sample), fraction, seed)
    summary = export_firmware(
        model, shifts, sample.features[train_idx], sample.features[val_idx], args.out,
        ExportSettings(seed=seed), samples_dir=args.samples,
    )  # fmt: skip

    _print_export_summary(summary)
    print(f"wrote {args.out}/firmware_model.h5 and export.json")
    return 0


def _training_settings_beside(weights: Path) -> dict:
    """The settings recorded in training.json next to a weights file ({} when there is none)."""
    record = weights.parent / "training.json"
    if not record.exists():
        return {}
    return json.loads(record.read_text()).get("settings", {})


def _derive_shifts(args: argparse.Namespace) -> int:
    from gelato.features import SEED_SHIFTS
    from gelato.model.shifts import derive_shifts_from_file, file_sha256, format_shift_table, save_shifts

    if not args.file.exists():
        raise FileNotFoundError(f"{args.file}: no such event file")
    shifts, quantiles, used = derive_shifts_from_file(args.file, args.quantile, args.max_events, args.names)
    print(f"{args.file}: {used} events, rule s = ceil(log2(quantile_{args.quantile:g}(|x| != 0)))")
    print(format_shift_table(shifts, quantiles, SEED_SHIFTS))
    if args.out is not None:
        save_shifts(
            args.out, shifts, source=str(args.file), sha256=file_sha256(args.file), events=used,
            quantile=args.quantile, quantiles=[float(q) for q in quantiles],
            rule="smallest integer s with quantile(|x| over non-zero entries) / 2**s <= 1",
        )  # fmt: skip
        print(f"wrote {args.out}")
    return 0
