"""Shared fixtures of the bit-exact tests: one compiled firmware project per test session.

The firmware model here has random weights (seeded), scaled up so that the relu
activations round and saturate often; the trained model is tested by `make csim`.
Each pytest-xdist worker builds its own project in its own temporary directory, so
workers never write into each other's build.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gelato.features import N_FEATURES, SEED_SHIFTS
from gelato.hls.config import DEFAULT_CONFIG


def random_firmware_model(path: Path, seed: int = 11) -> Path:
    """A firmware model with seeded random weights on (and beyond) the quantizer grids."""
    import tensorflow as tf

    from gelato.model.firmware import build_firmware_model, save_firmware_model

    tf.keras.utils.set_random_seed(seed)
    model = build_firmware_model(SEED_SHIFTS)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "QDense":
            kernel, bias = layer.get_weights()
            layer.set_weights([rng.uniform(-1.5, 1.5, kernel.shape).astype(np.float32),
                               rng.uniform(-3.0, 3.0, bias.shape).astype(np.float32)])
    save_firmware_model(model, path)
    return path


@pytest.fixture(scope="session")
def firmware(tmp_path_factory):
    """(FirmwareEmulator, work directory) for the random-weights model and the default config."""
    from gelato.hls.emulate import FirmwareEmulator

    work = tmp_path_factory.mktemp("firmware")
    model_path = random_firmware_model(work / "firmware_model.h5")
    return FirmwareEmulator(model_path, DEFAULT_CONFIG, work / "build"), work


def edge_events(n_random: int = 300, seed: int = 5) -> np.ndarray:
    """Events that probe every corner of the input words, then pT-ordered random events.

    Includes: an all-zero (fully padded) event, single-object events, values at and just
    beyond the raw type's limits, exact rounding ties of the raw LSB, negative pT,
    eta and phi out of their physical range, scaled-word saturation (muon3 pT x 4),
    and tiny values that round to zero.
    """
    rng = np.random.default_rng(seed)
    lsb = 2.0**-11
    specials = [
        np.zeros(N_FEATURES),
        np.r_[150.0, 1.2, -2.1, np.zeros(N_FEATURES - 3)],
        np.full(N_FEATURES, 4095.9995), np.full(N_FEATURES, 4096.0), np.full(N_FEATURES, -4096.0),
        np.full(N_FEATURES, 1e6), np.full(N_FEATURES, -1e6),
        np.full(N_FEATURES, 2.5 * lsb), np.full(N_FEATURES, -1.5 * lsb), np.full(N_FEATURES, 1e-30),
        np.tile([-40.0, 6.0, 7.0], 15)[:N_FEATURES], np.tile([80.0, -9.5, -12.6], 15)[:N_FEATURES],
        np.tile([300.0, 3.0, np.pi], 15)[:N_FEATURES],  # muon3 pT 300 GeV -> 1200 saturates at 1024
    ]
    realistic = np.zeros((n_random, N_FEATURES))
    for offset, count, scale in ((0, 6, 60.0), (18, 4, 25.0), (30, 4, 15.0)):
        pt = -np.sort(-rng.exponential(scale, (n_random, count)), axis=1)
        pt[rng.random((n_random, count)) < np.linspace(0.1, 0.8, count)] = 0.0
        pt = -np.sort(-pt, axis=1)
        for j in range(count):
            column, present = offset + 3 * j, pt[:, j] > 0
            realistic[:, column] = np.round(pt[:, j] * 4) / 4
            realistic[:, column + 1] = np.where(present, rng.uniform(-4.9, 4.9, n_random), 0.0)
            realistic[:, column + 2] = np.where(present, rng.uniform(-np.pi, np.pi, n_random), 0.0)
    realistic[:, 42] = rng.exponential(40.0, n_random)
    realistic[:, 43] = rng.uniform(-np.pi, np.pi, n_random)
    return np.concatenate([np.stack(specials), realistic]).astype(np.float32)


def small_firmware(work: Path, weights: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, *,
                   quantizers=None, hidden_units=(32, 16), latent_dim: int = 3, scaled_input: str | None = None,
                   seed: int = 3):
    """A compiled FirmwareEmulator for a firmware model of any size and precision.

    The config is the default one with every type after the model input set by
    :func:`gelato.hls.exact_types.exact_precisions` (optionally another ``scaled_input``).
    ``weights`` maps layer names to (kernel, bias); layers not given get seeded random
    weights spread over (and beyond) their quantizer's range.
    """
    import yaml

    from gelato.hls.config import load_hls_config
    from gelato.hls.emulate import FirmwareEmulator
    from gelato.hls.exact_types import exact_precisions
    from gelato.model.firmware import FirmwareQuantizers, build_firmware_model, save_firmware_model

    work.mkdir(parents=True, exist_ok=True)
    model = build_firmware_model(SEED_SHIFTS, quantizers or FirmwareQuantizers(), hidden_units, latent_dim)
    rng = np.random.default_rng(seed)
    for layer in (layer for layer in model.layers if type(layer).__name__ == "QDense"):
        kernel, bias = layer.get_weights()
        given = (weights or {}).get(layer.name)
        layer.set_weights(given if given is not None else
                          [rng.uniform(-1.5, 1.5, kernel.shape).astype(np.float32),
                           rng.uniform(-3.0, 3.0, bias.shape).astype(np.float32)])  # fmt: skip
    save_firmware_model(model, work / "firmware_model.h5")

    config = load_hls_config()
    if scaled_input is not None:
        config["precision"]["scaled_input"] = scaled_input
    (work / "hls.yaml").write_text(yaml.safe_dump(exact_precisions(config, model), sort_keys=False))
    return FirmwareEmulator(work / "firmware_model.h5", work / "hls.yaml", work / "build")


def three_path_scores(emulator, events: np.ndarray) -> dict[str, np.ndarray]:
    """Scores of the integer reference, the compiled emulation and the g++ C-simulation."""
    from gelato.hls.bitexact import csim_scores
    from gelato.hls.csim import build_testbench
    from gelato.hls.reference import reference_scores

    build_testbench(emulator.project_dir, emulator.config["project_name"])
    return {
        "reference": reference_scores(emulator.keras_model, emulator.config, events),
        "emulation": emulator.emulated_scores(events),
        "csim": csim_scores(emulator, events, emulator.float_scores(events)),
    }


def assert_paths_identical(scores: dict[str, np.ndarray], what: str) -> None:
    """Every path equals the emulation on every event; the message counts and lists the first that differ."""
    for path, values in scores.items():
        differ = np.flatnonzero(values != scores["emulation"])
        first = [(int(i), float(values[i]), float(scores["emulation"][i])) for i in differ[:5]]
        assert len(differ) == 0, (f"{what}: {path} differs from the emulation on {len(differ)} of {len(values)} "
                                  f"events; first (event, {path}, emulation): {first}")
