"""The committed default model (model/default/) is complete, consistent and firmware-ready."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gelato.model.firmware import load_firmware_model, shifts_of
from gelato.model.shifts import load_shifts

DEFAULT = Path(__file__).resolve().parents[1] / "model" / "default"
FILES = ("firmware_model.h5", "vaegan_weights.h5", "shifts.json", "training.json", "export.json", "loss_curve.png")


@pytest.fixture(scope="module")
def firmware():
    return load_firmware_model(DEFAULT / "firmware_model.h5")


def test_default_model_folder_is_complete_and_small():
    missing = [name for name in FILES if not (DEFAULT / name).exists()]
    assert not missing, f"model/default lacks {missing}"
    assert sum(p.stat().st_size for p in DEFAULT.iterdir()) < 1_000_000


def test_default_firmware_model_uses_the_recorded_shift_table(firmware):
    record = json.loads((DEFAULT / "training.json").read_text())
    assert shifts_of(firmware) == load_shifts(DEFAULT / "shifts.json") == record["shifts"]


def test_default_firmware_weights_are_exactly_on_their_quantizer_grids(firmware):
    for name in ("dense_0", "dense_1", "mu"):
        layer = firmware.get_layer(name)
        pairs = ((layer.kernel, layer.kernel_quantizer_internal), (layer.bias, layer.bias_quantizer_internal))
        for values, quantizer in pairs:
            np.testing.assert_array_equal(quantizer(values).numpy(), values.numpy(), err_msg=f"{name}/{values.name}")


def test_default_training_record_has_finite_losses_and_a_sample_digest():
    record = json.loads((DEFAULT / "training.json").read_text())
    assert len(record["sample"]["sha256"]) == 64
    assert record["epochs"] and all(np.isfinite(list(e["train"].values())).all() for e in record["epochs"])
