"""The fast bit-accurate scorer: build the generated kernel with g++ and run it on event blocks.

This module belongs to the hls stage.  :func:`gelato.hls.fastkernel.kernel_source` writes a
C++ kernel that reproduces the firmware's fixed-point arithmetic exactly on native types (or
refuses, see there); this module compiles it into ``<project>/fast/libgelato_fast-<key>.so``
and calls it through ctypes on float32 features, splitting each block over several threads
inside the library (the call releases the GIL).  The same library counts the saturated input
words per feature, with the same casts.  The inputs are the float32 values the event
files hold, cast to the raw input word in C++ exactly as the firmware casts the same value.

The library is built with ``-O3 -march=native``: the key in its name hashes the source, the
flags, the compiler version and this machine's CPU model and instruction-set flags, so a
build directory shared with another kind of machine gets its own library, never one that
uses instructions the CPU lacks.  A JSON file beside the library records what it was built
with.  Which scorer the calibration uses is decided in :mod:`gelato.hls.emulate`.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from gelato.hls.fastkernel import kernel_source
from gelato.malloc import usable_cores

log = logging.getLogger(__name__)

COMPILE_FLAGS = ("-O3", "-march=native", "-std=c++17", "-fPIC", "-shared", "-pthread")
FAST_DIR = "fast"
MIN_EVENTS_PER_THREAD = 8192
ROUNDING_MODE_CHANGED = ("the floating-point rounding mode is not round-to-nearest-even; something in this "
                         "process changed it, and the fast scorer relies on it")


def host_cpu() -> str:
    """This machine's CPU model and instruction-set flags (part of the library key, for -march=native)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        import platform

        return f"{platform.machine()} {platform.processor()}"
    wanted = [line for line in lines if line.split(":")[0].strip() in ("model name", "flags")]
    return "\n".join(dict.fromkeys(wanted))


def _compiler() -> tuple[str, str]:
    compiler = shutil.which("g++")
    if compiler is None:
        raise RuntimeError("g++ not found on PATH; the fast scorer is compiled C++")
    version = subprocess.run([compiler, "--version"], check=True, capture_output=True, text=True).stdout
    return compiler, version.splitlines()[0]


def build_fast_library(source: str, out_dir: Path, stem: str = "gelato_fast") -> tuple[Path, dict]:
    """Compile ``source`` into ``out_dir`` as ``lib<stem>-<key>.so`` (or reuse the identical build); returns the
    library and its record."""
    compiler, version = _compiler()
    key_text = "\n".join([source, " ".join(COMPILE_FLAGS), version, host_cpu()])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    library = out_dir / f"lib{stem}-{key}.so"
    record = {"compiler": version, "flags": list(COMPILE_FLAGS), "cpu": host_cpu().splitlines()[0], "key": key}
    if library.is_file():
        log.debug("reusing %s", library)
        return library, record

    out_dir.mkdir(parents=True, exist_ok=True)
    source_name = f"{stem}-{key}.cpp"
    partial_source = out_dir / f".{source_name}.{os.getpid()}.part"
    partial_source.write_text(source)
    os.replace(partial_source, out_dir / source_name)  # atomic: another process may be compiling it right now
    partial = f".{library.name}.{os.getpid()}.part"
    command = [compiler, *COMPILE_FLAGS, source_name, "-o", partial]
    log.info("compiling %s with %s", stem, " ".join(command[1:]))
    try:
        subprocess.run(command, check=True, cwd=out_dir, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        (out_dir / partial).unlink(missing_ok=True)
        raise RuntimeError(f"g++ build of {stem} failed in {out_dir}:\n{exc.stderr[-4000:]}") from exc
    os.replace(out_dir / partial, library)
    library.with_suffix(".json").write_text(json.dumps(record, indent=2))
    return library, record


class FastScorer:
    """ctypes handle on the fast kernel (scores and input-saturation counts).

    ``scores(features)`` gives the (N,) float64 firmware scores, ``input_saturation(features)``
    the per-feature counts of events with a saturated input word (C ``long`` is int64 on the
    LP64 Linux this builds for).
    """

    def __init__(self, hls_model, out_dir: Path, threads: int | None = None):
        source = kernel_source(hls_model)  # FastKernelRefused when it cannot be exact
        self.library_path, self.build_record = build_fast_library(source, Path(out_dir))
        self.threads = usable_cores() if threads is None else int(threads)
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")

        library = ctypes.CDLL(str(self.library_path))
        self.n_features = int(library.gelato_fast_n_features())
        function = library.gelato_fast_scores
        function.argtypes = [np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS"),
                             np.ctypeslib.ndpointer(np.float64, flags="C_CONTIGUOUS"), ctypes.c_long, ctypes.c_int]
        function.restype = ctypes.c_int
        self._function = function
        counter = library.gelato_fast_input_saturation
        counter.argtypes = [np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS"),
                            np.ctypeslib.ndpointer(np.int64, flags="C_CONTIGUOUS"), ctypes.c_long, ctypes.c_int]
        counter.restype = ctypes.c_long
        self._counter = counter
        self._library = library

    def _inputs(self, features: np.ndarray, threads: int | None) -> tuple[np.ndarray, int]:
        inputs = np.ascontiguousarray(features, dtype=np.float32)
        if inputs.ndim != 2 or inputs.shape[1] != self.n_features:
            raise ValueError(f"features must have shape (N, {self.n_features}), got {inputs.shape}")
        wanted = int(threads) if threads else self.threads
        return inputs, max(1, min(wanted, -(-len(inputs) // MIN_EVENTS_PER_THREAD)))

    def input_saturation(self, features: np.ndarray, threads: int | None = None) -> np.ndarray:
        """Per feature (n_features,), the events whose raw or scaled input word saturates (int64)."""
        inputs, n_threads = self._inputs(features, threads)
        counts = np.zeros(self.n_features, dtype=np.int64)
        not_finite = self._counter(inputs, counts, len(inputs), n_threads)
        if not_finite < 0:
            raise RuntimeError(ROUNDING_MODE_CHANGED)
        if not_finite:
            raise ValueError(f"features contain NaN or infinite values ({not_finite} values); "
                             f"the firmware input words cannot hold them")
        return counts

    def scores(self, features: np.ndarray, threads: int | None = None) -> np.ndarray:
        """Scores of float32 features (N, n_features): exact values of the firmware's score type.

        ``threads`` overrides the scorer's thread count for this call; blocks smaller than
        8,192 events per thread use fewer threads.  Raises ``ValueError`` naming the first
        events with a NaN or infinite feature.
        """
        inputs, n_threads = self._inputs(features, threads)
        scores = np.empty(len(inputs), dtype=np.float64)
        if self._function(inputs, scores, len(inputs), n_threads) != 0:
            raise RuntimeError(ROUNDING_MODE_CHANGED)
        bad = np.flatnonzero(np.isnan(scores))
        if len(bad):
            raise ValueError(f"features contain NaN or infinite values ({len(bad)} events, first {bad[:5].tolist()}); "
                             f"the firmware input words cannot hold them")
        return scores
