"""A batch driver for the compiled firmware: many events per C++ call (fast emulation).

This module belongs to the hls stage.  hls4ml's ``predict`` crosses from Python into
the compiled top function once per event (about 20,000 events/s here).  The driver in
``hls/templates/gelato_batch.cpp`` loops over a whole block of events in C++; this
module writes it into the project, builds it with g++ beside hls4ml's own library (the
same firmware sources, flags and weights), and calls it through ctypes.
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).parent / "templates" / "gelato_batch.cpp"
SOURCE = "gelato_batch.cpp"
LIBRARY = "firmware/libgelato_batch.so"


def build_batch_library(project_dir: Path, project_name: str, n_in: int, n_out: int) -> Path:
    """Write and compile the batch driver into ``<project>/firmware/libgelato_batch.so``."""
    compiler = shutil.which("g++")
    if compiler is None:
        raise RuntimeError("g++ not found on PATH; the emulation library needs a C++ compiler")
    source = TEMPLATE.read_text().replace("@PROJECT@", project_name)
    source = source.replace("@N_IN@", str(n_in)).replace("@N_OUT@", str(n_out))
    (project_dir / SOURCE).write_text(source)

    weights_dir = (project_dir / "firmware" / "weights").resolve()
    command = [
        # -fno-gnu-unique: static locals of inline functions (the generated shift table) stay private to this
        # library instead of being shared with every other firmware library loaded into the process
        compiler, "-O3", "-fPIC", "-shared", "-std=c++17", "-fno-gnu-unique", "-Ifirmware/ap_types", "-Ifirmware",
        f'-DWEIGHTS_DIR="{weights_dir}"', SOURCE, f"firmware/{project_name}.cpp", "-o", LIBRARY,
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, cwd=project_dir, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"g++ build of the batch driver failed in {project_dir}:\n{exc.stderr[-4000:]}") from exc
    return project_dir / LIBRARY


class BatchRunner:
    """ctypes handle on the batch driver: ``run(features)`` -> results (N, n_out) float64."""

    def __init__(self, library: Path, n_in: int, n_out: int):
        self.n_in, self.n_out = n_in, n_out
        self._library = ctypes.CDLL(str(library))
        function = self._library.gelato_batch_scores
        pointer = np.ctypeslib.ndpointer(np.float64, flags="C_CONTIGUOUS")
        function.argtypes = [pointer, pointer, ctypes.c_long]
        function.restype = None
        self._function = function

    def run(self, features: np.ndarray) -> np.ndarray:
        inputs = np.ascontiguousarray(features, dtype=np.float64)
        if inputs.ndim != 2 or inputs.shape[1] != self.n_in:
            raise ValueError(f"expected features of shape (N, {self.n_in}), got {inputs.shape}")
        results = np.zeros((len(inputs), self.n_out), dtype=np.float64)
        self._function(inputs, results, len(inputs))
        return results
