"""The three-way bit-exactness proof: integer reference = compiled emulation = C-simulation.

This module belongs to the hls stage and is what ``gelato bitexact`` (``make bitexact``)
runs.  Trigger physicists take every physics number from the emulation and sign off the
firmware only when it equals the HLS C++ bit for bit, so this compares, event by event:

* :func:`gelato.hls.reference.reference_scores`, numpy integer arithmetic written from
  the config and the Keras weights alone;
* :class:`gelato.hls.emulate.FirmwareEmulator`, the firmware C++ compiled by g++ and run
  through the batch driver (``method="ap_fixed"``), and the fast native scorer the
  calibration uses (``method="fast"``, :mod:`gelato.hls.fastscore`) against it;
* the C-simulation: the hls4ml-generated testbench built with g++ (:mod:`gelato.hls.csim`),
  reading the same float32 inputs from its text files, in blocks of :data:`CSIM_BLOCK`;

on every event of every committed sample plus the random and edge-case sets of
:mod:`gelato.hls.input_sets`.  Any mismatch between two paths is counted and listed;
the first disagreeing events are then traced layer by layer through the reference and
the generated C++ (:mod:`gelato.hls.trace`) and the report names the first layer that
diverges.  The float Keras model is compared on the committed samples (where it must
agree up to quantization, not bit for bit).  Writes ``reports/bitexact.{json,md}``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from gelato.hls.bitexact_report import markdown, verdict_line
from gelato.hls.config import file_digest
from gelato.hls.convert import build_lock
from gelato.hls.csim import build_testbench, compare_float, run_testbench, sample_labels, write_testbench_data
from gelato.hls.emulate import FirmwareEmulator
from gelato.hls.input_sets import coverage, input_sets
from gelato.hls.reference import reference_scores, reference_trace
from gelato.io import Names, read_events, write_report_pair

log = logging.getLogger(__name__)

CSIM_BLOCK = 250_000
REFERENCE_BLOCK = 200_000
MAX_LISTED_MISMATCHES = 10
MAX_TRACED_EVENTS = 10
PAIRS = (("reference", "emulation"), ("csim", "emulation"), ("csim", "reference"), ("fast", "emulation"))


def committed_sets(sample_files: list[Path], names: Names = None) -> dict[str, np.ndarray]:
    """Every event of every sample file, by file label."""
    labels = sample_labels([Path(p) for p in sample_files])
    return {label: read_events(path, names=names).features for label, path in zip(labels, sample_files)}


def chunked_reference_scores(emulator: FirmwareEmulator, features: np.ndarray) -> np.ndarray:
    """The integer reference in blocks (bounded memory for millions of events)."""
    blocks = [reference_scores(emulator.keras_model, emulator.config, features[start : start + REFERENCE_BLOCK])
              for start in range(0, len(features), REFERENCE_BLOCK)]  # fmt: skip
    return np.concatenate(blocks) if blocks else np.zeros(0)


def csim_scores(emulator: FirmwareEmulator, features: np.ndarray, floats: np.ndarray) -> np.ndarray:
    """Scores of the HLS testbench (built by :func:`build_testbench`), run on blocks of ``CSIM_BLOCK`` events."""
    project_dir, scores = emulator.project_dir, []
    with build_lock(project_dir):  # tb_data/ and the binary are shared by every run in this project
        for start in range(0, len(features), CSIM_BLOCK):
            block = slice(start, start + CSIM_BLOCK)
            write_testbench_data(project_dir, features[block], floats[block])
            scores.append(run_testbench(project_dir, len(features[block])))
    return np.concatenate(scores) if scores else np.zeros(0)


def compare_set(name: str, scores: dict[str, np.ndarray]) -> dict:
    """Mismatch counts and first mismatching events of every pair of paths, for one event set."""
    result = {"events": int(len(scores["emulation"])), "csim_events": int(len(scores.get("csim", [])))}
    for a, b in PAIRS:
        if a not in scores or b not in scores:
            continue
        n = min(len(scores[a]), len(scores[b]))
        differ = np.flatnonzero(scores[a][:n] != scores[b][:n])
        result[f"{a}_vs_{b}"] = {
            "events": int(n), "mismatches": int(len(differ)),
            "first_mismatches": [{"set": name, "event": int(i), a: float(scores[a][i]), b: float(scores[b][i])}
                                 for i in differ[:MAX_LISTED_MISMATCHES]],
        }  # fmt: skip
    return result


def run_set(emulator: FirmwareEmulator, name: str, features: np.ndarray, with_csim: bool) -> tuple[dict, dict]:
    """All paths on one event set: (comparison, timings in s)."""
    timings, scores = {}, {}
    start = time.perf_counter()
    scores["reference"] = chunked_reference_scores(emulator, features)
    timings["reference"] = time.perf_counter() - start
    start = time.perf_counter()
    scores["emulation"] = emulator.emulated_scores(features, method="ap_fixed")  # the firmware C++ itself
    timings["emulation"] = time.perf_counter() - start
    if emulator.fast is not None:  # the fast scorer the calibration runs on, checked against it
        start = time.perf_counter()
        scores["fast"] = emulator.emulated_scores(features, method="fast")
        timings["fast"] = time.perf_counter() - start
    start = time.perf_counter()
    floats = emulator.float_scores(features)
    timings["float"] = time.perf_counter() - start
    if with_csim:
        start = time.perf_counter()
        scores["csim"] = csim_scores(emulator, features, floats)
        timings["csim"] = time.perf_counter() - start

    comparison = compare_set(name, scores)
    comparison["coverage"] = coverage(features, emulator.raw_type, emulator.scaled_type, emulator.shifts)
    comparison["emulation_vs_float"] = compare_float(scores["emulation"], floats, emulator.score_type.lsb)
    log.info("%s: %d events; %s", name, len(features),
             ", ".join(f"{a}-{b} {comparison[f'{a}_vs_{b}']['mismatches']}" for a, b in PAIRS
                       if f"{a}_vs_{b}" in comparison))  # fmt: skip
    return comparison, {k: round(v, 2) for k, v in timings.items()}


def totals(per_set: dict) -> dict:
    """Events and mismatches per pair of paths, summed over the sets."""
    out = {}
    for a, b in PAIRS:
        key = f"{a}_vs_{b}"
        rows = [s[key] for s in per_set.values() if key in s]
        out[key] = {"events": sum(r["events"] for r in rows), "mismatches": sum(r["mismatches"] for r in rows),
                    "first_mismatches": [m for r in rows for m in r["first_mismatches"]][:MAX_LISTED_MISMATCHES]}
    return out


def diagnose(emulator: FirmwareEmulator, model_path: Path, config_path: Path, build_dir: Path,
             sets: dict[str, np.ndarray], mismatches: list[dict]) -> dict:
    """Trace the first mismatching events through reference and generated C++; name the first diverging layer."""
    from gelato.hls.trace import firmware_trace, first_divergence

    chosen = mismatches[:MAX_TRACED_EVENTS]
    features = np.stack([sets[m["set"]][m["event"]] for m in chosen])
    expected = reference_trace(emulator.keras_model, emulator.config, features)
    actual = firmware_trace(model_path, config_path, build_dir, features)
    found = first_divergence(expected, actual)
    events = [f"{m['set']}#{m['event']}" for m in chosen]
    if found is None:
        return {"traced_events": events, "layer": None,
                "summary": "reference and generated C++ agree at every layer on these events: the difference is "
                           "outside the layers (input parsing of the testbench or the batch driver)"}  # fmt: skip
    found.events = [events[i] for i in found.events]
    for detail in found.details:
        detail["event"] = events[detail["event"]]
    return {"traced_events": events, **found.as_dict(), "summary": found.summary()}


def run_bitexact(model_path: Path, config_path: Path, build_dir: Path, sample_files: list[Path], reports_dir: Path,
                 n_random: int = 1_000_000, seed: int = 2026, csim: bool = True, names: Names = None) -> dict:
    """The whole comparison (see the module docstring); writes the reports and returns their content."""
    start = time.perf_counter()
    emulator = FirmwareEmulator(model_path, config_path, build_dir)
    committed = committed_sets(sample_files, names)
    generated = input_sets(n_random, emulator.raw_type, emulator.scaled_type, emulator.shifts, seed)
    sets = {**committed, **generated}

    per_set, timings = {}, {}
    if csim:
        with build_lock(emulator.project_dir):
            build_testbench(emulator.project_dir, emulator.config["project_name"])
    for name, features in sets.items():
        per_set[name], timings[name] = run_set(emulator, name, features, csim)
    summed = totals(per_set)
    mismatches = [m for pair in summed.values() for m in pair["first_mismatches"]]
    result = {
        "verdict": "FAIL" if any(p["mismatches"] for p in summed.values()) else "PASS",
        "events": {"committed": sum(len(x) for x in committed.values()),
                   "random_and_edge": sum(len(x) for x in generated.values()),
                   "total": sum(len(x) for x in sets.values())},
        "csim_run": csim, "seed": seed, "pairs": summed, "sets": per_set,
        "inputs": {"model": str(model_path), "model_sha256": file_digest(model_path), "hls_config": str(config_path),
                   "hls_config_sha256": file_digest(config_path)},
        "score_type": str(emulator.score_type),
        "divergence": diagnose(emulator, model_path, config_path, build_dir, sets, mismatches) if mismatches else None,
    }  # fmt: skip
    result["verdict_line"] = verdict_line(result)
    result["timing_s"] = {"per_set": timings, "total": round(time.perf_counter() - start, 1)}
    write_bitexact_report(result, Path(reports_dir))
    return result


def write_bitexact_report(result: dict, reports_dir: Path) -> None:
    """Write ``bitexact.json`` and the readable ``bitexact.md`` beside it."""
    write_report_pair(reports_dir, "bitexact", result, markdown(result))
