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
