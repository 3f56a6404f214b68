"""`gelato bench` and `gelato calibrate` refuse bad arguments and bad samples before any benchmarking starts."""

from __future__ import annotations

import numpy as np
import pytest
from test_calibration_pipeline import synthetic_events

from gelato.cli import main
from gelato.io import write_events


@pytest.fixture
def sample(tmp_path):
    return write_events(tmp_path / "samples" / "zerobias.h5", synthetic_events(50, np.random.default_rng(2), 10.0))


def _error(capsys) -> str:
    return capsys.readouterr().err


def test_bench_names_the_file_and_dataset_of_a_nan(tmp_path, capsys):
    features = synthetic_events(40, np.random.default_rng(3), 10.0)
    features[7, 2] = np.nan
    path = write_events(tmp_path / "bad.h5", features)
    assert main(["bench", "--sample", str(path), "--no-end-to-end", "--out", str(tmp_path / "hls")]) == 2
    err = _error(capsys)
    assert str(path) in err and "features" in err and "NaN" in err and "Traceback" not in err
    assert not (tmp_path / "hls").exists()  # refused before the firmware was built


def test_bench_checks_the_other_processes_files_too(sample, tmp_path, capsys):
    features = synthetic_events(30, np.random.default_rng(4), 10.0)
    features[0, 0] = np.inf
    bad = write_events(sample.parent / "jz4.h5", features)
    assert main(["bench", "--sample", str(sample), "--out", str(tmp_path / "hls")]) == 2
    assert str(bad) in _error(capsys)


@pytest.mark.parametrize("option, value", [("--threads", "0"), ("--chunk-threads", "-1"),
                                           ("--end-to-end-events", "0"), ("--end-to-end-repeats", "0")])
def test_bench_refuses_a_count_below_one(sample, tmp_path, capsys, option, value):
    assert main(["bench", "--sample", str(sample), option, value, "--out", str(tmp_path / "hls")]) == 2
    assert f"{option} must be positive, got {value}" in _error(capsys)


def test_bench_refuses_to_cut_the_end_to_end_sample(sample, tmp_path, capsys):
    assert main(["bench", "--sample", str(sample), "--end-to-end-events", "10", "--out", str(tmp_path / "hls")]) == 2
    err = _error(capsys)
    assert "--end-to-end-events 10 is fewer than the 50 events" in err and str(sample) in err


def test_bench_refuses_a_missing_samples_folder(sample, tmp_path, capsys):
    assert main(["bench", "--sample", str(sample), "--samples", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "hls")]) == 2
    assert "no such folder" in _error(capsys)


def test_bench_says_when_the_end_to_end_run_has_the_reference_alone(sample, tmp_path, capsys):
    import argparse

    from gelato.bench_commands import _efficiency_samples

    empty = tmp_path / "empty"
    empty.mkdir()
    args = argparse.Namespace(samples=empty, sample=sample, calibration=None)
    assert _efficiency_samples(args) == {}
    assert f"{empty} holds none of" in capsys.readouterr().out
    write_events(empty / "jz4.h5", synthetic_events(5, np.random.default_rng(5), 10.0))
    assert list(_efficiency_samples(args)) == ["jz4"]


@pytest.mark.parametrize("command", ["calibrate", "bench"])
def test_a_local_cluster_of_no_workers_is_refused(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--local-cluster", "0"])
    assert exit_info.value.code == 2 and "--local-cluster: expected at least 1, got 0" in _error(capsys)


def test_the_in_process_executor_refuses_no_threads():
    from gelato.calibration.execution import open_executor

    with pytest.raises(ValueError, match="at least 1 thread, got 0"), open_executor(threads=0):
        pass


def test_bench_refuses_a_reports_path_it_cannot_create_before_benchmarking(sample, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["bench", "--sample", str(sample), "--reports", str(blocker / "sub"),
                 "--out", str(tmp_path / "hls")]) == 2
    assert f"--reports {blocker / 'sub'}: cannot create this folder ({blocker} is a file)" in _error(capsys)
    assert not (tmp_path / "hls").exists()


def test_a_refused_bench_leaves_no_reports_folder(tmp_path, capsys):
    features = synthetic_events(10, np.random.default_rng(3), 10.0)
    features[1, 1] = np.inf
    path = write_events(tmp_path / "bad.h5", features)
    assert main(["bench", "--sample", str(path), "--reports", str(tmp_path / "new" / "reports"),
                 "--out", str(tmp_path / "hls")]) == 2
    assert not (tmp_path / "new").exists()


def test_bench_refuses_a_cluster_without_the_end_to_end_section(sample, tmp_path, capsys):
    assert main(["bench", "--sample", str(sample), "--no-end-to-end", "--local-cluster", "2",
                 "--out", str(tmp_path / "hls")]) == 2
    assert "which --no-end-to-end skips" in _error(capsys)


def test_an_unreachable_scheduler_is_a_clear_error():
    import dask
    import distributed  # noqa: F401 - its config defaults first, or leaving dask.config.set would drop them

    from gelato.calibration.execution import open_executor

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(ValueError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:1"):
            with open_executor(scheduler="tcp://127.0.0.1:1"):
                pass
