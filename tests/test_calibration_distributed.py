"""A calibration on a Dask LocalCluster (loopback, worker processes) or on threads equals the single-process one."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from test_calibration_pipeline import SyntheticScorer, write_synthetic_samples

from gelato.calibration.config import DEFAULT_CONFIG, settings_from_dict
from gelato.calibration.execution import LOOPBACK, InProcessExecutor, open_executor
from gelato.calibration.pipeline import run_calibration
from gelato.calibration.report import _json_default, build_summary

NO_CSIM = {"csim_vs_emulation": {"events": 0}}


def run(samples, root, settings, executor=None) -> dict:
    """summary.json of a calibration run, as written (the report's plots are left out to keep the test short)."""
    result = run_calibration(settings, SyntheticScorer(), samples, root / "build", NO_CSIM, {}, executor=executor,
                             scorer_factory=SyntheticScorer)
    return json.loads(json.dumps(build_summary(result), default=_json_default))


def numbers(summary: dict) -> dict:
    """What must agree: thresholds, efficiencies, menu, flips, samples, saturation (not the input paths)."""
    return {k: summary[k] for k in ("thresholds", "efficiencies", "menu", "float_vs_emulated", "samples", "saturation")}


def small_settings(chunk_events: int):
    """The default calibration settings with small chunks and one plot of each kind."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["chunk_events"] = chunk_events
    data["plots"] = {"efficiency_features": ["jet0_pt"], "extra_efficiency_features": {},
                     "score_vs_features": ["n_jets"]}
    return settings_from_dict(data)


def test_local_cluster_on_loopback_gives_the_single_process_summary_bit_for_bit(tmp_path):
    settings = small_settings(2500)
    samples = write_synthetic_samples(tmp_path / "samples", n_ref=20000, n_proc=3000)

    single = run(samples, tmp_path / "single", settings)
    with open_executor(local_cluster=2) as executor:
        assert executor.distributed and LOOPBACK in executor.description
        distributed = run(samples, tmp_path / "cluster", settings, executor)

    assert json.dumps(numbers(distributed), sort_keys=True) == json.dumps(numbers(single), sort_keys=True)
    assert distributed["thresholds"]["emulated"]["500"]["n_reference"] == 20000


def test_chunk_tasks_on_threads_give_the_single_thread_summary_bit_for_bit(tmp_path):
    settings = small_settings(1500)
    samples = write_synthetic_samples(tmp_path / "samples", n_ref=20000, n_proc=4000)

    single = run(samples, tmp_path / "single", settings)
    with open_executor(threads=2) as executor:
        assert not executor.distributed and executor.description == "single process, 2 threads"
        threaded = run(samples, tmp_path / "threads", settings, executor)

    assert json.dumps(numbers(threaded), sort_keys=True) == json.dumps(numbers(single), sort_keys=True)


def test_an_in_process_executor_yields_results_in_task_order_and_refuses_no_threads():
    def slow_first(task: int) -> int:
        time.sleep(0.05 if task == 0 else 0.0)
        return task * task

    assert list(InProcessExecutor(3).map(slow_first, range(7))) == [(i, i * i) for i in range(7)]
    with pytest.raises(ValueError, match="at least 1 thread, got 0"):
        InProcessExecutor(0)
