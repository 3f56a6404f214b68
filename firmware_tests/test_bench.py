"""`gelato bench`: the table, the bit-exact checks and the reports (speed itself is never asserted here)."""

from __future__ import annotations

import json

import numpy as np
from conftest import edge_events

from gelato.io import write_events


def test_benchmark_events_cuts_or_replicates_the_file_in_order(tmp_path):
    from gelato.bench import benchmark_events

    events = edge_events(n_random=7)
    path = write_events(tmp_path / "few.h5", events)
    np.testing.assert_array_equal(benchmark_events(path, None), events)
    np.testing.assert_array_equal(benchmark_events(path, 5), events[:5])
    np.testing.assert_array_equal(benchmark_events(path, 3 * len(events) + 2),
                                  np.concatenate([events, events, events, events[:2]]))


def test_cli_bench_prints_the_verdict_and_writes_reports(firmware, tmp_path, capsys, monkeypatch):
    from gelato.cli import main

    _, work = firmware
    sample = write_events(tmp_path / "zerobias.h5", edge_events(n_random=600, seed=3))
    monkeypatch.chdir(work)
    code = main(["bench", "--model", "firmware_model.h5", "--out", "build", "--sample", str(sample),
                 "--events", "2000", "--predict-events", "300", "--ap-fixed-events", "500", "--repeats", "1",
                 "--reports", str(tmp_path / "reports")])
    out = capsys.readouterr().out

    assert code == 0
    assert "fast vs predict: 300 events, 0 mismatches" in out and "fast vs ap fixed: 500 events, 0 mismatches" in out
    assert "threads vs one thread: 2,000 events, 0 mismatches" in out
    verdict = [line for line in out.splitlines() if line.startswith("scorer/predict = ")]
    assert len(verdict) == 1 and verdict[0].endswith(("PASS", "FAIL")) and "(target >= 300)" in verdict[0]

    report = json.loads((tmp_path / "reports" / "bench.json").read_text())
    names = [m["name"] for m in report["measurements"]]
    assert names[:3] == ["float Keras model", "hls4ml predict", "ap_fixed batch driver"] and len(names) == 5
    assert [m["events"] for m in report["measurements"]] == [2000, 300, 500, 2000, 2000]
    assert verdict[0] in (tmp_path / "reports" / "bench.md").read_text()

    end_to_end = report["end_to_end"]
    assert end_to_end["measured"] is True and [m["events"] for m in end_to_end["measurements"]] == [613, 613]
    assert set(end_to_end["stage_seconds"]) == {"scores", "thresholds", "efficiencies"}
    e2e_verdict = [line for line in out.splitlines() if line.startswith("end-to-end/raw read = ")]
    assert len(e2e_verdict) == 1 and e2e_verdict[0].endswith(("PASS", "FAIL"))
    assert not (work / "build" / "bench").exists()  # its score files are removed after the run


def test_cli_bench_without_end_to_end_says_it_was_not_measured(firmware, tmp_path, capsys, monkeypatch):
    from gelato.cli import main

    _, work = firmware
    sample = write_events(tmp_path / "zerobias.h5", edge_events(n_random=100, seed=4))
    monkeypatch.chdir(work)
    assert main(["bench", "--model", "firmware_model.h5", "--out", "build", "--sample", str(sample), "--repeats", "1",
                 "--no-end-to-end", "--reports", str(tmp_path / "reports")]) == 0
    assert "end-to-end/raw read" not in capsys.readouterr().out
    report = json.loads((tmp_path / "reports" / "bench.json").read_text())
    assert report["end_to_end"] == {"measured": False, "reason": "not requested (--end-to-end)"}
    assert "not measured (not requested (--end-to-end))" in (tmp_path / "reports" / "bench.md").read_text()
