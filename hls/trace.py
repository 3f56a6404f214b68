"""Per-layer traces of the firmware and the first layer where two implementations diverge.

This module belongs to the hls stage and serves the bit-exactness proof
(:mod:`gelato.hls.bitexact`).  When two paths disagree on a score, the firmware engineer
needs to know where: :func:`firmware_trace` runs the generated C++ with hls4ml's own
tracing (every layer's output saved per event), :func:`gelato.hls.reference.reference_trace`
gives the same values from the integer reference, and :func:`first_divergence` walks the
layers in dataflow order and names the first one whose values differ, with the first
events and the first differing unit of each.

Tracing needs its own hls4ml project (``<out>/<project_name>_trace/``: hls4ml compiles the
trace hooks into the library), so it is built only when a diagnosis is asked for and
never touches the project the emulator and the C-simulation use.  hls4ml's trace calls
the library once per event: it is meant for the handful of events that disagree.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gelato.hls.convert import build_lock, hls4ml_settings, precision_plan, verify_types

log = logging.getLogger(__name__)

TRACE_SUFFIX = "_trace"
MAX_LISTED_EVENTS = 10


@dataclass
class Divergence:
    """The first layer (in dataflow order) where two traces differ, and how."""

    layer: str
    events: list[int]
    n_events: int
    details: list[dict] = field(default_factory=list)
    agreeing_layers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"layer": self.layer, "n_events": self.n_events, "events": self.events,
                "details": self.details, "agreeing_layers": self.agreeing_layers}  # fmt: skip

    def summary(self) -> str:
        before = ", ".join(self.agreeing_layers) or "nothing"
        return (f"first diverging layer: {self.layer} ({self.n_events} events differ there, first {self.events}); "
                f"agree before it: {before}")


def first_divergence(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray],
                     event_ids: np.ndarray | None = None) -> Divergence | None:
    """The first layer of ``expected`` (dataflow order) whose values differ in ``actual``; None if none do.

    Layers missing from ``actual`` are skipped (hls4ml traces no input layer).  ``event_ids``
    maps rows to the event numbers reported (default: the row numbers).
    """
    agreeing = []
    for layer, want in expected.items():
        if layer not in actual:
            continue
        got = np.asarray(actual[layer], dtype=np.float64).reshape(want.shape)
        differ_rows = np.flatnonzero((got != want).any(axis=1))
        if len(differ_rows) == 0:
            agreeing.append(layer)
            continue
        ids = np.arange(len(want)) if event_ids is None else np.asarray(event_ids)
        details = [_unit_detail(int(ids[row]), want[row], got[row]) for row in differ_rows[:MAX_LISTED_EVENTS]]
        events = [int(ids[row]) for row in differ_rows[:MAX_LISTED_EVENTS]]
        return Divergence(layer, events, int(len(differ_rows)), details, agreeing)
    return None


def _unit_detail(event: int, want: np.ndarray, got: np.ndarray) -> dict:
    unit = int(np.flatnonzero(want != got)[0])
    return {"event": event, "unit": unit, "expected": float(want[unit]), "actual": float(got[unit]),
            "units_differing": int(np.count_nonzero(want != got))}  # fmt: skip


def firmware_trace(model_path: Path, config_path: Path, out_root: Path, features: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output of the generated C++ for ``features`` (hls4ml trace), float64.

    Builds ``<out_root>/<project_name>_trace/`` with tracing on every layer (tens of seconds),
    runs the events one by one and returns ``{layer name: (N, units)}``.
    """
    import hls4ml

    from gelato.hls.config import load_hls_config
    from gelato.hls.extension import register_bitshift_extension
    from gelato.model.firmware import load_firmware_model

    config = load_hls_config(config_path)
    keras_model = load_firmware_model(model_path)
    plan = precision_plan(config, keras_model, str(config_path))
    register_bitshift_extension()
    settings = hls4ml_settings(config, plan, trace=True)
    project_dir = Path(out_root).resolve() / f"{config['project_name']}{TRACE_SUFFIX}"

    with build_lock(project_dir):
        hls_model = hls4ml.converters.convert_from_keras_model(
            keras_model, hls_config=settings, output_dir=str(project_dir), project_name=config["project_name"],
            backend=config["backend"], part=config["part"], clock_period=config["clock_period_ns"],
            io_type=config["io_type"],
        )  # fmt: skip
        verify_types(hls_model, plan)
        log.info("tracing %d events through %s (compiles the traced library first)", len(features), project_dir)
        inputs = np.ascontiguousarray(np.asarray(features, dtype=np.float32).astype(np.float64))
        with contextlib.redirect_stdout(io.StringIO()) as printed:  # hls4ml prints 'Recompiling ...'
            _, traces = hls_model.trace(inputs)
        log.debug("hls4ml trace said: %s", printed.getvalue().strip())
    return {name: np.asarray(values, dtype=np.float64).reshape(len(features), -1) for name, values in traces.items()}

