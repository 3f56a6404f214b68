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
                 "--chunk-threads", "2",
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
    assert end_to_end["measured"] is True and end_to_end["raw_read"]["events"] == end_to_end["end_to_end"]["events"]
    assert end_to_end["end_to_end"]["events"] == 613 and list(end_to_end["samples"]) == ["zerobias"]
    assert set(end_to_end["end_to_end"]["stage_seconds"]) == {"reference", "thresholds", "processes"}
    for prefix in ("end-to-end/raw read = ", "end-to-end peak memory = "):
        lines = [line for line in out.splitlines() if line.startswith(prefix)]
        assert len(lines) == 1 and lines[0].endswith(("PASS", "FAIL")), (prefix, out)
    assert "full pass: float and emulated scores" in out and end_to_end["end_to_end"]["execution"] == (
        "single process, 2 threads")
    assert not (work / "bench").exists()  # its score files are removed after the run


def test_cli_bench_end_to_end_on_a_replicated_sample_beside_other_processes(firmware, tmp_path, capsys, monkeypatch):
    from gelato.cli import main

    _, work = firmware
    samples = tmp_path / "samples"
    sample = write_events(samples / "zerobias.h5", edge_events(n_random=100, seed=5))
    write_events(samples / "jz4.h5", edge_events(n_random=50, seed=6))
    monkeypatch.chdir(work)
    assert main(["bench", "--model", "firmware_model.h5", "--out", "build", "--sample", str(sample), "--events", "300",
                 "--predict-events", "50", "--ap-fixed-events", "50", "--repeats", "1", "--end-to-end-events",
                 "1000", "--work", str(tmp_path / "work"), "--reports", str(tmp_path / "reports")]) == 0
    section = json.loads((tmp_path / "reports" / "bench.json").read_text())["end_to_end"]
    assert list(section["samples"]) == ["zerobias", "jz4"] and section["end_to_end"]["events"] == 1000 + 63
    assert section["raw_read"]["events"] == 1000 + 63
    assert not (tmp_path / "work").exists()  # the replicated file went with the score files


def test_cli_bench_without_end_to_end_says_it_was_not_measured(firmware, tmp_path, capsys, monkeypatch):
    from gelato.cli import main

    _, work = firmware
    sample = write_events(tmp_path / "zerobias.h5", edge_events(n_random=100, seed=4))
    monkeypatch.chdir(work)
    assert main(["bench", "--model", "firmware_model.h5", "--out", "build", "--sample", str(sample), "--repeats", "1",
                 "--chunk-threads", "2",
                 "--no-end-to-end", "--reports", str(tmp_path / "reports")]) == 0
    assert "end-to-end/raw read" not in capsys.readouterr().out
    report = json.loads((tmp_path / "reports" / "bench.json").read_text())
    assert report["end_to_end"] == {"measured": False, "reason": "not requested (--end-to-end)"}
    assert "not measured (not requested (--end-to-end))" in (tmp_path / "reports" / "bench.md").read_text()
