"""The calibration report's synthesis section: read synth.json, check it belongs to the same firmware."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gelato.calibration.synthesis_section import synthesis_markdown, synthesis_summary
from gelato.hls.config import DEFAULT_CONFIG
from gelato.hls.synth import parse_csynth_xml, summarise, synthesis_inputs

FIXTURES = Path(__file__).parent / "fixtures" / "synth"


@pytest.fixture
def firmware_files(tmp_path):
    model, config = tmp_path / "firmware_model.h5", tmp_path / "default.yaml"
    model.write_bytes(b"weights v1")
    config.write_text(Path(DEFAULT_CONFIG).read_text())
    return model, config


def _oss_report(inputs: dict | None) -> dict:
    report = {"path": "open-source", "label": "estimates from open tools", "part": "xcvu9p-flgb2104-2-e",
              "latency_cycles": 8, "latency_ns": 50.0, "latency_budget_ns": 50.0, "fits_latency_budget": True,
              "initiation_interval": 1, "rtl_vs_emulation": {"events": 10000, "mismatches": 0, "samples": {}},
              "resources": {"LUT": {"used": 49666, "available": 1182240, "percent": 4.201},
                            "DSP": {"used": 0, "available": 6840, "percent": 0.0},
                            "MUXF": {"used": 10, "available": None, "percent": None}},
              "goal": {"latency": True, "lut_at_most_1_percent": False, "no_dsp": True}}
    if inputs is not None:
        report["inputs"] = inputs
    return report


def test_missing_report_is_said_and_not_invented(tmp_path, firmware_files):
    summary = synthesis_summary(tmp_path, *map(str, firmware_files))
    assert summary == {"present": False}
    assert "Not available (no `synth.json`" in synthesis_markdown(summary)


def test_report_of_the_same_firmware_is_summarised_with_its_figures(tmp_path, firmware_files):
    (tmp_path / "synth.json").write_text(json.dumps(_oss_report(synthesis_inputs(*firmware_files))))
    summary = synthesis_summary(tmp_path, *map(str, firmware_files))
    assert summary["same_firmware"] is True and summary["path"] == "open-source"
    assert summary["resources"] == {"LUT": {"used": 49666, "percent": 4.201}, "DSP": {"used": 0, "percent": 0.0}}
    text = synthesis_markdown(summary)
    assert "estimates from open tools" in text and "same firmware model" in text
    assert "LUT 49666 (4.201 %)" in text and "10000 events, 0 mismatches" in text
    assert "Goals: latency within budget at II = 1: yes; at most 1 % of the LUTs: **no**; no DSP: yes" in text


def test_report_of_other_firmware_is_flagged(tmp_path, firmware_files):
    model, config = firmware_files
    (tmp_path / "synth.json").write_text(json.dumps(_oss_report(synthesis_inputs(model, config))))
    model.write_bytes(b"weights v2, retrained")
    summary = synthesis_summary(tmp_path, str(model), str(config))
    assert summary["same_firmware"] is False
    assert "different firmware model or hls config" in synthesis_markdown(summary)


def test_report_without_recorded_inputs_is_of_unknown_provenance(tmp_path, firmware_files):
    (tmp_path / "synth.json").write_text(json.dumps(_oss_report(None)))
    summary = synthesis_summary(tmp_path, *map(str, firmware_files))
    assert summary["same_firmware"] is None
    assert "not recorded" in synthesis_markdown(summary)


def test_vendor_report_uses_its_hls_resource_table(tmp_path, firmware_files):
    vendor = summarise(parse_csynth_xml(FIXTURES / "gelato_l1ad_csynth.xml"), {"latency_budget_bx": 2})
    assert vendor["path"] == "vendor"
    (tmp_path / "synth.json").write_text(json.dumps({**vendor, "inputs": synthesis_inputs(*firmware_files)}))
    summary = synthesis_summary(tmp_path, *map(str, firmware_files))
    assert summary["resources"]["LUT"]["used"] == vendor["hls_resources"]["LUT"]["used"]
    assert "vendor HLS reports" in synthesis_markdown(summary) and summary["rtl_vs_emulation"] is None


def test_unreadable_report_is_named_not_raised(tmp_path, firmware_files):
    (tmp_path / "synth.json").write_text("{ truncated")
    summary = synthesis_summary(tmp_path, *map(str, firmware_files))
    assert summary["present"] is False and "synth.json" in summary["error"]
    assert "Not available" in synthesis_markdown(summary)
