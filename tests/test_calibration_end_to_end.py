"""`gelato calibrate` end to end with the real firmware emulation and C-simulation (slow)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import yaml

from gelato import PROJECT_ROOT
from gelato.calibration.config import DEFAULT_CONFIG
from gelato.cli import main

from test_calibration_pipeline import write_synthetic_samples

MODEL = PROJECT_ROOT / "model" / "default" / "firmware_model.h5"
HLS_CONFIG = PROJECT_ROOT / "hls" / "configs" / "default.yaml"


@pytest.mark.slow
@pytest.mark.skipif(not MODEL.exists(), reason=f"no firmware model at {MODEL}")
def test_gelato_calibrate_on_tiny_samples_is_bit_exact_and_complete(tmp_path):
    write_synthetic_samples(tmp_path / "samples", n_ref=4000, n_proc=300)
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config.update(csim_events=700, chunk_events=1500)
    config["plots"] = {"efficiency_features": ["jet0_pt"], "score_vs_features": ["MET_pt"]}
    (tmp_path / "calibration.yaml").write_text(yaml.safe_dump(config))

    code = main(["bitexact", "--config", str(HLS_CONFIG), "--model", str(MODEL), "--samples", str(tmp_path / "samples"),
                 "--out", str(tmp_path / "build" / "hls"), "--reports", str(tmp_path / "reports"),
                 "--random-events", "2000", "--no-csim"])
    assert code == 0
    code = main(["calibrate", "--config", str(HLS_CONFIG), "--model", str(MODEL), "--samples", str(tmp_path / "samples"),
                 "--build", str(tmp_path / "build"), "--reports", str(tmp_path / "reports"),
                 "--calibration", str(tmp_path / "calibration.yaml")])
    assert code == 0

    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert summary["bit_exact"]["csim_vs_emulation"]["events"] == 700
    assert summary["bit_exact"]["csim_vs_emulation"]["mismatches"] == 0
    lsb = summary["settings"]["score_lsb"]
    for entry in summary["thresholds"]["emulated"].values():
        assert entry["threshold"] / lsb == entry["threshold_code"]
        assert entry["rate_hz"] <= entry["target_rate_hz"]
    with h5py.File(tmp_path / "build" / "scores" / "jz1.h5", "r") as f:
        assert f["features"].shape == (300, 44) and "scaled_features" not in f
        assert len(f.attrs["input_shifts"]) == 44
        codes = f["score_emulated"][:] / lsb
        np.testing.assert_array_equal(codes, np.round(codes))
        assert set(f) >= {"score_float", "weight", "l1_menu_pass"}
    assert (tmp_path / "reports" / "index.md").read_text().count(".png") >= 7 + 1 + 6
    assert (tmp_path / "reports" / "csim.md").exists()
    three_way = summary["bit_exact"]["three_way"]  # the section of `gelato bitexact`, same firmware
    assert three_way["verdict"] == "PASS" and three_way["same_firmware"] is True
    assert three_way["events"] == {"committed": 4000 + 6 * 300, "random_and_edge": 2000, "total": 7800}
    index = (tmp_path / "reports" / "index.md").read_text()
    assert "## Bit-exactness (reference, emulation, C-simulation)" in index and three_way["verdict_line"] in index
    with h5py.File(tmp_path / "build" / "scores" / "zerobias.h5", "r") as f:
        assert "features" not in f and f.attrs["version"] == 3  # the rate reference keeps no features

    # The same run with the chunk tasks on a Dask LocalCluster (2 worker processes, loopback): same numbers.
    inputs = ["--config", str(HLS_CONFIG), "--model", str(MODEL), "--samples", str(tmp_path / "samples"),
              "--calibration", str(tmp_path / "calibration.yaml")]
    code = main(["calibrate", *inputs, "--build", str(tmp_path / "build_cluster"),
                 "--reports", str(tmp_path / "reports_cluster"), "--local-cluster", "2"])
    assert code == 0
    cluster = json.loads((tmp_path / "reports_cluster" / "summary.json").read_text())
    for key in ("thresholds", "efficiencies", "menu", "float_vs_emulated", "samples", "saturation", "findings"):
        assert cluster[key] == summary[key], key
