"""`gelato bitexact`: one-line verdict, reports/bitexact.{json,md}, and the calibration report's section."""

from __future__ import annotations

import json
import shutil

from conftest import edge_events

from gelato.calibration.bitexact_section import bitexact_markdown, bitexact_summary
from gelato.hls.config import DEFAULT_CONFIG
from gelato.io import write_events


def test_cli_bitexact_prints_one_verdict_line_and_writes_both_reports(firmware, tmp_path, capsys, monkeypatch):
    from gelato.cli import main

    emulator, work = firmware
    events = edge_events(n_random=287, seed=41)  # 300 events
    write_events(tmp_path / "samples" / "a.h5", events[:120])
    write_events(tmp_path / "samples" / "b.h5", events[120:])
    config = tmp_path / "hls.yaml"
    shutil.copy(DEFAULT_CONFIG, config)
    monkeypatch.chdir(work)  # relative paths, as the Makefile passes them
    code = main(["bitexact", "--config", str(config), "--model", "firmware_model.h5", "--out", "build",
                 "--samples", str(tmp_path / "samples"), "--random-events", "3000", "--reports", str(tmp_path / "r")])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0] == ("bitexact: PASS reference=emulation=csim=fast on 3,300 events (300 committed + 3,000 "
                        "random/edge), 0 mismatches")
    report = json.loads((tmp_path / "r" / "bitexact.json").read_text())
    assert report["verdict_line"] == lines[0] and report["divergence"] is None
    assert {key: pair["events"] for key, pair in report["pairs"].items()} == dict.fromkeys(report["pairs"], 3300)
    assert list(report["sets"]) == ["a", "b", "random_full_range", "random_physical", "edge_cases"]
    edge = report["sets"]["edge_cases"]["coverage"]
    assert edge["raw_word_ties"] > 0 and edge["scaled_word_ties"] > 0 and edge["raw_words_saturated"] > 0
    assert edge["scaled_words_saturated"] > 0 and edge["all_zero_events"] > 0 and edge["phi_beyond_pi"] > 0
    assert lines[0] in (tmp_path / "r" / "bitexact.md").read_text()

    summary = bitexact_summary(tmp_path / "r", str(work / "firmware_model.h5"), str(config))
    assert summary["same_firmware"] is True and summary["verdict"] == "PASS"
    assert summary["pairs"]["csim_vs_reference"] == {"events": 3300, "mismatches": 0}
    assert summary["pairs"]["fast_vs_emulation"] == {"events": 3300, "mismatches": 0}  # the calibration's scorer
    assert lines[0] in bitexact_markdown(summary) and "same firmware model" in bitexact_markdown(summary)

    config.write_text(config.read_text() + "# edited after the comparison\n")
    stale = bitexact_summary(tmp_path / "r", str(work / "firmware_model.h5"), str(config))
    assert stale["same_firmware"] is False and "rerun `gelato bitexact --model M --config C" in bitexact_markdown(stale)


def test_missing_bitexact_report_is_said_not_invented(tmp_path):
    summary = bitexact_summary(tmp_path, None, None)
    assert summary == {"present": False}
    assert "Not available (no `bitexact.json`" in bitexact_markdown(summary)
