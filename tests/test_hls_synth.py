"""Synthesis report parsing on vendor-format fixtures, and `gelato synth` without tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from gelato.hls.synth import parse_csynth_xml, parse_vivado_utilization, part_resources, summarise, write_synth_report

FIXTURES = Path(__file__).parent / "fixtures" / "synth"
CONFIG = {"latency_budget_bx": 2}


def test_vitis_csynth_xml_parses_to_the_report_numbers():
    report = parse_csynth_xml(FIXTURES / "gelato_l1ad_csynth.xml")
    assert report["part"] == "xcvu9p-flgb2104-2-e" and report["top"] == "gelato_l1ad"
    assert report["tool_version"] == "2023.2"
    assert (report["target_clock_ns"], report["estimated_clock_ns"]) == (6.25, 4.321)
    assert report["latency_cycles"] == {"best": 7, "worst": 7}
    assert report["interval_cycles"] == {"min": 1, "max": 1}
    assert report["resources"] == {"LUT": 59112, "FF": 21873, "DSP": 1419, "BRAM_18K": 0, "URAM": 0}
    assert report["available"]["DSP"] == 6840


def test_vivado_hls_csynth_xml_maps_dsp48e_to_dsp():
    report = parse_csynth_xml(FIXTURES / "vivado_hls_2019_csynth.xml")
    assert report["resources"]["DSP"] == 1523 and report["available"]["DSP"] == 6840
    assert report["latency_cycles"]["worst"] == 11 and report["target_clock_ns"] == 5.0


def test_vivado_utilization_report_parses_used_column():
    used = parse_vivado_utilization(FIXTURES / "vivado_synth.rpt")
    assert used == {"LUT": 41876, "FF": 15290, "BRAM_18K": 3, "URAM": 0, "DSP": 1187}


def test_summary_gives_ns_percentages_and_budget_verdict(tmp_path):
    summary = summarise(parse_csynth_xml(FIXTURES / "gelato_l1ad_csynth.xml"), CONFIG,
                        parse_vivado_utilization(FIXTURES / "vivado_synth.rpt"))
    assert summary["latency_ns"] == 43.75 and summary["latency_budget_ns"] == 50.0
    assert summary["fits_latency_budget"] and summary["accepts_every_bunch_crossing"] and summary["timing_met"]
    assert summary["hls_resources"]["DSP"] == {"used": 1419, "available": 6840, "percent": 20.746}
    assert summary["hls_resources"]["LUT"]["percent"] == 5.0
    assert summary["vivado_resources"]["FF"]["percent"] == round(100 * 15290 / 2364480, 3)
    write_synth_report(summary, tmp_path)
    assert "43.75 ns: fits" in (tmp_path / "synth.md").read_text()


def test_summary_flags_a_design_over_budget_and_timing():
    summary = summarise(parse_csynth_xml(FIXTURES / "vivado_hls_2019_csynth.xml"), CONFIG)
    assert summary["latency_ns"] == 55.0 and not summary["fits_latency_budget"] and not summary["timing_met"]


def test_part_table_knows_the_vu9p():
    assert part_resources("xcvu9p-flgb2104-2-e") == {"LUT": 1182240, "FF": 2364480, "DSP": 6840,
                                                     "BRAM_18K": 4320, "URAM": 960}
    assert part_resources("xc7vx690t-ffg1927-2") is None


def test_malformed_report_names_the_missing_element(tmp_path):
    from gelato.hls.synth import SynthReportError

    bad = tmp_path / "top_csynth.xml"
    bad.write_text("<profile><UserAssignments><Part>xcvu9p</Part></UserAssignments></profile>")
    with pytest.raises(SynthReportError, match="UserAssignments/TopModelName"):
        parse_csynth_xml(bad)


def test_synth_without_vendor_tools_exits_3_and_names_them(tmp_path, monkeypatch, capsys):
    from gelato.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))  # no vitis-run, vitis_hls or vivado_hls here
    code = main(["synth", "--path", "vendor", "--model", str(tmp_path / "absent.h5"), "--out", str(tmp_path / "build"),
                 "--reports", str(tmp_path / "reports")])
    err = capsys.readouterr().err
    assert code == 3
    for tool in ("vitis-run", "vitis_hls", "vivado_hls"):
        assert tool in err
    assert "nothing was synthesised" in err and not (tmp_path / "reports").exists()
