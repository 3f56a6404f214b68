"""Training of the VAE-GAN on the zero-bias sample, reproducibly, then export (model stage).

``gelato train`` lands here: read ``<samples>/zerobias.h5`` (the rate reference), scale
x / 2**s with the shift table, hold out a validation fraction, train
:class:`gelato.model.vaegan.VaeGan` for a fixed number of epochs, save the weights, and
hand over to :func:`gelato.model.export.export_firmware`.

Reproducibility: ``tf.keras.utils.set_random_seed(seed)`` (Python, NumPy and TensorFlow
seeds), ``tf.config.experimental.enable_op_determinism()``, a train/validation split and
per-epoch batch order drawn from ``numpy.random.default_rng`` seeded by ``seed`` (and
the epoch), so the same command on the same file gives bit-identical weights.

Event weights of the sample are not used: zero-bias events are unweighted by construction.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import tensorflow as tf

from gelato.features import FEATURE_NAMES, SEED_SHIFTS
from gelato.io import EventSample, atomic_output, read_events
from gelato.model.firmware import FirmwareQuantizers
from gelato.model.settings import ExportSettings, TrainSettings
from gelato.model.shifts import file_sha256, save_shifts, scale_features, validate_shifts
from gelato.model.vaegan import VaeGan, VaeGanConfig, save_vaegan_weights

log = logging.getLogger(__name__)

TRAINING_SAMPLE = "zerobias.h5"
WEIGHTS_FILE = "vaegan_weights.h5"
SHIFTS_FILE = "shifts.json"
TRAINING_JSON = "training.json"
LOSS_PLOT = "loss_curve.png"
#: The export results repeated in training.json (export.json has them all).
EXPORT_KEYS_IN_RECORD = ("agreement", "saturation", "saturation_per_sample", "saturation_impact", "score_statistics")

EpochCallback = Callable[[int, int, dict[str, float], dict[str, float], float], None]


def load_training_sample(samples_dir: str | os.PathLike[str], max_events: int | None = None) -> EventSample:
    """Read ``<samples_dir>/zerobias.h5`` (first ``max_events``), checking it is usable."""
    path = Path(samples_dir) / TRAINING_SAMPLE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no zero-bias sample here; the model trains on {TRAINING_SAMPLE} (make data)")
    sample = read_events(path, max_events=max_events)

    if len(sample) < 10:
        raise ValueError(f"{path}: only {len(sample)} events; training needs at least 10")
    bad_rows = np.flatnonzero(~np.isfinite(sample.features).all(axis=1))
    if bad_rows.size:
        raise ValueError(f"{path}: {bad_rows.size} events with non-finite features (first: event {bad_rows[0]})")
    return sample


def split_indices(n_events: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random split of ``range(n_events)`` into sorted (train, validation) indices."""
    order = np.random.default_rng([seed, 0]).permutation(n_events)
    n_val = max(1, int(round(validation_fraction * n_events)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow ops deterministic."""
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def train_vaegan(
    train_x: np.ndarray,
    val_x: np.ndarray,
    settings: TrainSettings,
    on_epoch: EpochCallback | None = None,
) -> tuple[VaeGan, list[dict]]:
    """Train a fresh VAE-GAN on scaled features; returns the model and per-epoch losses."""
    seed_everything(settings.seed)
    n_batches = len(train_x) // settings.batch_size
    if n_batches == 0:
        raise ValueError(f"{len(train_x)} training events are fewer than one batch of {settings.batch_size}")
    quantizers = FirmwareQuantizers()
    if settings.activation_quantizer is not None:
        quantizers = replace(quantizers, activation=settings.activation_quantizer)
    config = VaeGanConfig(
        quantizers=quantizers,
        loss_weights=settings.loss_weights,
        batchnorm_gamma_max=settings.batchnorm_gamma_max,
        seed=settings.seed,
    )
    total_steps = settings.epochs * n_batches
    generator_rate = _cosine(settings.learning_rate, total_steps)
    model = VaeGan(config, generator_rate, _cosine(settings.discriminator_learning_rate, total_steps))

    history = []
    for epoch in range(settings.epochs):
        start = time.perf_counter()
        order = np.random.default_rng([settings.seed, 1, epoch]).permutation(len(train_x))
        sums: dict[str, float] = {}
        for b in range(n_batches):
            batch = train_x[order[b * settings.batch_size : (b + 1) * settings.batch_size]]
            for key, value in model.train_batch(batch).items():
                sums[key] = sums.get(key, 0.0) + value

        train_losses = {key: value / n_batches for key, value in sums.items()}
        val_losses = model.evaluate(val_x)
        seconds = time.perf_counter() - start
        history.append({"epoch": epoch + 1, "train": train_losses, "validation": val_losses, "seconds": seconds})
        log.debug("epoch %d: train %s validation %s", epoch + 1, train_losses, val_losses)
        if on_epoch is not None:
            on_epoch(epoch + 1, settings.epochs, train_losses, val_losses, seconds)
    return model, history


def _cosine(rate: float, steps: int) -> tf.keras.optimizers.schedules.LearningRateSchedule:
    """Cosine decay from ``rate`` to 5% of it over the whole run (smooth, deterministic end)."""
    return tf.keras.optimizers.schedules.CosineDecay(rate, steps, alpha=0.05)


def plot_losses(history: Sequence[dict], path: str | os.PathLike[str]) -> Path:
    """A small PNG of the training and validation losses per epoch (mplhep ATLAS style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    mplhep.style.use("ATLAS")
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for key, color in (("generator", "black"), ("reconstruction", "tab:blue"), ("kl", "tab:green")):
        axes[0].plot(epochs, [h["train"][key] for h in history], color=color, label=f"{key} (train)")
        axes[0].plot(epochs, [h["validation"][key] for h in history], color=color, ls="--", label=f"{key} (val.)")
    for key, color in (("adversarial", "tab:red"), ("discriminator", "tab:purple")):
        axes[1].plot(epochs, [h["train"][key] for h in history], color=color, label=f"{key} (train)")
        axes[1].plot(epochs, [h["validation"][key] for h in history], color=color, ls="--", label=f"{key} (val.)")

    axes[0].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Loss")
        ax.legend(fontsize=7, loc="center right")
    mplhep.atlas.label(text="Internal", ax=axes[0], data=False, rlabel="zero-bias training", fontsize=9)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=70)
    plt.close(fig)
    return Path(path)


def run_training(
    samples_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    settings: TrainSettings = TrainSettings(),
    shifts: Sequence[int] = SEED_SHIFTS,
    shifts_source: str = "seed (gelato.features.SEED_SHIFTS)",
    on_epoch: EpochCallback | None = None,
) -> dict:
    """Train on ``<samples_dir>/zerobias.h5``, export, and write everything to ``out_dir``.

    Writes ``vaegan_weights.h5``, ``shifts.json``, ``firmware_model.h5``, ``export.json``,
    ``training.json`` and ``loss_curve.png``; returns the content of ``training.json``.
    """
    from gelato.model.export import export_firmware

    shifts = validate_shifts(shifts)
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    sample = load_training_sample(samples_dir, settings.max_events)
    train_idx, val_idx = split_indices(len(sample), settings.validation_fraction, settings.seed)
    scaled = scale_features(sample.features, shifts)
    t_load = time.perf_counter() - t0

    log.info("training on %d events of %s (%d held out)", len(train_idx), sample.path, len(val_idx))
    model, history = train_vaegan(scaled[train_idx], scaled[val_idx], settings, on_epoch)
    t_train = time.perf_counter() - t0 - t_load

    save_vaegan_weights(out_dir / WEIGHTS_FILE, model, shifts)
    save_shifts(out_dir / SHIFTS_FILE, shifts, source=shifts_source)
    export_summary = export_firmware(
        model, shifts, sample.features[train_idx], sample.features[val_idx], out_dir,
        ExportSettings(seed=settings.seed), samples_dir=Path(samples_dir),
    )  # fmt: skip
    t_export = time.perf_counter() - t0 - t_load - t_train

    summary = {
        "settings": _jsonable(asdict(settings)),
        "model_config": _jsonable(model.config.to_dict()),
        "seed": settings.seed,
        "shifts": shifts,
        "shifts_source": shifts_source,
        "feature_names": list(FEATURE_NAMES),
        "sample": {
            "path": str(sample.path),
            "sha256": file_sha256(sample.path),
            "events_in_file": int(sample.attrs.get("n_events", len(sample))),
            "events_used": len(sample),
            "training_events": int(len(train_idx)),
            "validation_events": int(len(val_idx)),
            "attrs": _jsonable({k: v for k, v in sample.attrs.items() if k in ("process", "seed", "n_events")}),
        },
        "epochs": history,
        "final": {"train": history[-1]["train"], "validation": history[-1]["validation"]},
        "timings_s": {"load": t_load, "train": t_train, "export": t_export, "total": time.perf_counter() - t0},
        "environment": _environment(),
        "export": {key: export_summary[key] for key in EXPORT_KEYS_IN_RECORD},
    }
    plot_losses(history, out_dir / LOSS_PLOT)
    with atomic_output(out_dir / TRAINING_JSON) as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _environment() -> dict:
    import qkeras

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "qkeras": getattr(qkeras, "__version__", "unknown"),
        "numpy": np.__version__,
        "cpu_threads": os.cpu_count(),
    }


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
