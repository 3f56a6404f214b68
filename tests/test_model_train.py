"""VAE-GAN layout, reproducible training, export and the model stage's CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf

from gelato.cli import main
from gelato.features import SEED_SHIFTS
from gelato.io import write_events
from gelato.model.firmware import load_firmware_model, shifts_of
from gelato.model.settings import TrainSettings
from gelato.model.train import run_training
from gelato.model.vaegan import VaeGan, VaeGanConfig

TINY = TrainSettings(epochs=2, batch_size=256, max_events=3000, seed=5)


def _synthetic_zero_bias(n_events: int, seed: int) -> np.ndarray:
    """Events with the look of L1 objects: pT-ordered, zero-padded jets, taus, muons, and MET."""
    rng = np.random.default_rng(seed)
    features = np.zeros((n_events, 44), dtype=np.float32)
    for offset, count, mean_count, pt_scale, eta_max in ((0, 6, 4, 25, 4.9), (18, 4, 1, 10, 2.5), (30, 4, 0.3, 8, 2.4)):
        multiplicity = np.minimum(rng.poisson(mean_count, n_events), count)
        pt = -np.sort(-(5 + rng.exponential(pt_scale, (n_events, count))), axis=1)
        for j in range(count):
            present = j < multiplicity
            features[present, offset + 3 * j] = pt[present, j]
            features[present, offset + 3 * j + 1] = rng.uniform(-eta_max, eta_max, present.sum())
            features[present, offset + 3 * j + 2] = rng.uniform(-np.pi, np.pi, present.sum())
    features[:, 42] = rng.exponential(20, n_events)
    features[:, 43] = rng.uniform(-np.pi, np.pi, n_events)
    return features


@pytest.fixture(scope="module")
def samples_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("samples")
    write_events(directory / "zerobias.h5", _synthetic_zero_bias(4000, seed=1), attrs={"process": "zerobias"})
    write_events(directory / "ttbar_1lep.h5", _synthetic_zero_bias(500, seed=2), attrs={"process": "ttbar_1lep"})
    return directory


@pytest.fixture(scope="module")
def two_runs(samples_dir, tmp_path_factory) -> tuple[Path, Path, dict]:
    first, second = tmp_path_factory.mktemp("run1"), tmp_path_factory.mktemp("run2")
    summary = run_training(samples_dir, first, TINY)
    run_training(samples_dir, second, TINY)
    return first, second, summary


def _h5_arrays(path: Path) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def test_vaegan_has_the_seed_paper_layer_sizes():
    model = VaeGan(VaeGanConfig())
    layers = [layer for network in model.networks.values() for layer in network.layers]
    units = {layer.name: layer.units for layer in layers if hasattr(layer, "units")}
    assert units == {
        "enc_dense_0": 32, "enc_dense_1": 16, "z_mean": 3, "z_log_var": 3,
        "dec_dense_0": 16, "dec_dense_1": 32, "reconstruction": 44,
        "disc_dense_0": 8, "disc_dense_1": 2, "p_real": 1,
    }  # fmt: skip
    assert [o.shape[-1] for o in model.encoder.outputs] == [3, 3, 3]
    assert model.discriminator.get_layer("p_real").activation is tf.keras.activations.sigmoid
    assert model.decoder.get_layer("reconstruction").activation is tf.keras.activations.linear
    assert isinstance(model.encoder.get_layer("enc_bn_1"), tf.keras.layers.BatchNormalization)


def test_batchnorm_scales_stay_within_their_cap_after_training(two_runs):
    from gelato.model.vaegan import load_vaegan_weights

    first, _, _ = two_runs
    model, _ = load_vaegan_weights(first / "vaegan_weights.h5")
    cap = model.config.batchnorm_gamma_max
    gammas = np.concatenate([model.encoder.get_layer(f"enc_bn_{i}").gamma.numpy() for i in range(2)])
    assert cap == 0.5 and np.all(np.abs(gammas) <= cap)


def test_tiny_training_gives_finite_losses(two_runs):
    _, _, summary = two_runs
    assert len(summary["epochs"]) == TINY.epochs
    for epoch in summary["epochs"]:
        for part in ("train", "validation"):
            assert all(np.isfinite(v) for v in epoch[part].values()), epoch
    assert summary["sample"]["training_events"] + summary["sample"]["validation_events"] == 3000


def test_same_command_twice_gives_identical_weights(two_runs):
    first, second, _ = two_runs
    for name in ("vaegan_weights.h5", "firmware_model.h5"):
        a, b = _h5_arrays(first / name), _h5_arrays(second / name)
        assert a.keys() == b.keys() and a
        differing = [key for key in a if not np.array_equal(a[key], b[key])]
        assert not differing, f"{name}: {len(differing)} arrays differ, first {differing[:3]}"


def test_exported_score_equals_sum_of_squares_of_mu(two_runs, samples_dir):
    first, _, _ = two_runs
    firmware = load_firmware_model(first / "firmware_model.h5")
    x = _synthetic_zero_bias(1000, seed=9)
    mu = tf.keras.Model(firmware.input, firmware.get_layer("mu").output)(x).numpy()

    np.testing.assert_allclose(firmware(x).numpy()[:, 0], np.sum(mu.astype(np.float64) ** 2, axis=1), rtol=1e-6)
    assert shifts_of(firmware) == list(SEED_SHIFTS)
    layer = firmware.get_layer("dense_0")
    np.testing.assert_array_equal(layer.kernel_quantizer_internal(layer.kernel).numpy(), layer.kernel.numpy())


def test_training_writes_its_record_and_stays_small(two_runs):
    first, _, _ = two_runs
    record = json.loads((first / "training.json").read_text())
    assert len(record["sample"]["sha256"]) == 64 and record["seed"] == TINY.seed
    export = json.loads((first / "export.json").read_text())
    assert set(export["score_statistics"]) == {"validation", "zerobias", "ttbar_1lep"}
    assert sum(p.stat().st_size for p in first.iterdir()) < 1_000_000


def test_cli_export_from_saved_weights_reproduces_the_trained_firmware_model(two_runs, samples_dir, tmp_path):
    """Seed, event count and split come from training.json beside the weights."""
    first, _, _ = two_runs
    weights = str(first / "vaegan_weights.h5")
    code = main(["export", "--weights", weights, "--out", str(tmp_path), "--samples", str(samples_dir)])
    assert code == 0
    a, b = _h5_arrays(first / "firmware_model.h5"), _h5_arrays(tmp_path / "firmware_model.h5")
    assert all(np.array_equal(a[key], b[key]) for key in a)


def test_cli_train_without_zerobias_exits_2_naming_the_file(tmp_path, capsys):
    code = main(["train", "--samples", str(tmp_path), "--out", str(tmp_path / "out")])
    assert code == 2
    assert str(tmp_path / "zerobias.h5") in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_export_with_missing_weights_exits_2_naming_the_file(tmp_path, capsys):
    code = main(["export", "--weights", str(tmp_path / "w.h5"), "--out", str(tmp_path)])
    assert code == 2
    assert "w.h5" in capsys.readouterr().err
