"""Checks of event files before any stage spends time on them (the library of `gelato validate`).

Shared by every stage: ``gelato validate`` prints what :func:`validate_event_file` finds,
and ``gelato calibrate`` calls :func:`require_valid` on its samples first.  A file is
checked in two steps:

1. its layout (:mod:`gelato.layouts`): the path exists and is a readable, non-empty HDF5
   file; every one of the 44 features is found exactly once, with the right shape and a
   numeric dtype; weights and the ``l1_menu_pass`` flag, when present, are (N,);
2. its values, read in blocks of ``chunk_events`` so a file of any size fits in memory:
   no NaN or infinity; no negative pT; |phi| <= pi (compared in float32, so float32(pi)
   passes); objects pT-ordered and zero-padded (a zero-pT object has eta = phi = 0 and
   only zero-pT objects follow it); weights finite and >= 0; menu flags 0 or 1.  A
   non-finite value is reported once, as such, and left out of the other checks.

Each :class:`Problem` names the file, the dataset(s), what is wrong and the first
offending event indices (at most :data:`MAX_EVENTS_SHOWN`).  Nothing here modifies a
file or raises for a bad one: problems are returned, so the caller decides.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from gelato.features import FEATURE_NAMES, JET_OFFSET, MET_OFFSET, MUON_OFFSET, N_JETS, N_MUONS, N_TAUS, TAU_OFFSET
from gelato.io import Names, open_event_file
from gelato.layouts import FILE_LEVEL, DatasetReadError, EventFileError, EventLayout, inspect_layout, resolve_names

log = logging.getLogger(__name__)

MAX_EVENTS_SHOWN = 5
PI_FLOAT32 = np.float32(np.pi)
OBJECT_FAMILIES = (("jets", JET_OFFSET, N_JETS), ("taus", TAU_OFFSET, N_TAUS), ("muons", MUON_OFFSET, N_MUONS))


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file: where (file, dataset), what, and the first events showing it."""

    file: str
    dataset: str
    message: str
    first_events: tuple[int, ...] = ()
    #: A value outside the physical range of the features (negative pT, |phi| > pi, objects
    #: out of order or not zero-padded), as opposed to an unreadable, missing or non-finite value.
    physical: bool = False

    def __str__(self) -> str:
        events = f"; first events {', '.join(map(str, self.first_events))}" if self.first_events else ""
        return f"{self.file}: {self.dataset}: {self.message}{events}"


@dataclass
class FileReport:
    """Outcome of checking one file: event count and layout when readable, and its problems."""

    path: Path
    n_events: int = 0
    layout: str = ""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Finding:
    events: int = 0
    first: list[int] = field(default_factory=list)
    names: set[str] = field(default_factory=set)


class _Tally:
    """Per (dataset, check) counts of offending events, the first few indices and the names involved."""

    def __init__(self) -> None:
        self.findings: dict[tuple[str, str], _Finding] = {}
        self.rank: dict[tuple[str, str], int] = {}  # order of the checks, so output does not depend on blocks
        self.physical: set[tuple[str, str]] = set()

    def add(self, dataset: str, check: str, start: int, bad: np.ndarray, names: list[str],
            physical: bool = False) -> None:
        """``bad`` is (n, len(names)) bool: which value of which named column is wrong; ``physical``:
        a physical-range check (see :attr:`Problem.physical`)."""
        self.rank.setdefault((dataset, check), len(self.rank))
        if physical:
            self.physical.add((dataset, check))
        per_event = bad.any(axis=1)
        if not per_event.any():
            return
        finding = self.findings.setdefault((dataset, check), _Finding())
        finding.events += int(per_event.sum())
        room = MAX_EVENTS_SHOWN - len(finding.first)
        finding.first += [start + int(i) for i in np.flatnonzero(per_event)[:room]]
        finding.names.update(name for name, hit in zip(names, bad.any(axis=0)) if hit)

    def problems(self, file: str, n_events: int) -> list[Problem]:
        out = []
        for (dataset, check), finding in sorted(self.findings.items(), key=lambda item: self.rank[item[0]]):
            names = sorted(finding.names, key=_name_order)
            shown = ", ".join(names[:8]) + (f" ... and {len(names) - 8} more" if len(names) > 8 else "")
            message = f"{check} in {shown} ({finding.events} of {n_events} events)"
            out.append(Problem(file, dataset, message, tuple(finding.first), (dataset, check) in self.physical))
        return out


def _name_order(name: str) -> int:
    return next((i for i, feature in enumerate(FEATURE_NAMES) if feature.startswith(name)), len(FEATURE_NAMES))


def _check_objects(tally: _Tally, layout: EventLayout, start: int, x: np.ndarray) -> None:
    for family, offset, count in OBJECT_FAMILIES:
        objects = x[:, offset : offset + 3 * count].reshape(len(x), count, 3)
        pt, eta, phi = objects[:, :, 0], objects[:, :, 1], objects[:, :, 2]
        names = [FEATURE_NAMES[offset + 3 * i].removesuffix("_pt") for i in range(count)]
        pt_data = layout.datasets_of(range(offset, offset + 3 * count, 3))
        phi_data = layout.datasets_of(range(offset + 2, offset + 3 * count, 3))
        all_data = layout.datasets_of(range(offset, offset + 3 * count))

        tally.add(pt_data, f"negative pT ({family})", start, pt < 0, names, physical=True)
        tally.add(phi_data, f"|phi| > pi ({family})", start, np.abs(phi) > PI_FLOAT32, names, physical=True)
        unordered = (pt[:, 1:] > pt[:, :-1]) & (pt[:, :-1] > 0)
        tally.add(pt_data, f"{family} not pT-ordered: pT above the previous object's", start, unordered, names[1:],
                  physical=True)

        zero = pt == 0
        stray = ((eta != 0) & np.isfinite(eta)) | ((phi != 0) & np.isfinite(phi))
        padding = f"{family} not zero-padded"
        tally.add(all_data, f"{padding}: zero-pT object with non-zero eta or phi", start, zero & stray, names,
                  physical=True)
        after_zero = zero[:, :-1] & (pt[:, 1:] != 0) & np.isfinite(pt[:, 1:])
        tally.add(pt_data, f"{padding}: non-zero object after a zero-pT one", start, after_zero, names[1:],
                  physical=True)


def _check_block(
    tally: _Tally, layout: EventLayout, start: int, x: np.ndarray, weights: np.ndarray | None, menu: np.ndarray | None
) -> None:
    for source in layout.sources:
        names = [FEATURE_NAMES[c] for c in source.columns]
        tally.add(source.dataset, "NaN or infinity", start, ~np.isfinite(x[:, source.columns]), names)
    x = np.where(np.isfinite(x), x, np.float32(np.nan))  # every comparison below is False for NaN: reported once
    _check_objects(tally, layout, start, x)

    met_pt, met_phi = x[:, [MET_OFFSET]], x[:, [MET_OFFSET + 1]]
    tally.add(layout.datasets_of([MET_OFFSET]), "negative pT (MET)", start, met_pt < 0, ["MET_pt"], physical=True)
    phi_outside = np.abs(met_phi) > PI_FLOAT32
    tally.add(layout.datasets_of([MET_OFFSET + 1]), "|phi| > pi (MET)", start, phi_outside, ["MET_phi"],
              physical=True)

    if weights is not None:
        w = weights.astype(np.float64)[:, None]
        where, label = layout.weight.dataset, [layout.weight.field or layout.weight.dataset]
        tally.add(where, "NaN or infinite weight", start, ~np.isfinite(w), label)
        tally.add(where, "negative weight", start, np.isfinite(w) & (w < 0), label)
    if menu is not None and menu.dtype.kind != "b":
        where, label = layout.menu.dataset, [layout.menu.field or layout.menu.dataset]
        tally.add(where, "menu decision not 0 or 1", start, ((menu != 0) & (menu != 1))[:, None], label)


def _without_path(path: Path, message: str) -> str:
    return message.removeprefix(f"{path}: ")


def _check_values(report: FileReport, f: h5py.File, layout: EventLayout, chunk_events: int) -> None:
    file, tally = str(report.path), _Tally()
    try:
        for start in range(0, layout.n_events, chunk_events):
            features, weights, menu = layout.read(f, start, min(start + chunk_events, layout.n_events))
            _check_block(tally, layout, start, features, weights, menu)
    except DatasetReadError as exc:
        report.problems.append(Problem(file, exc.dataset, exc.detail))
    report.problems[:0] = tally.problems(file, layout.n_events)


def check_event_file(path: str | os.PathLike[str], names: Names = None, chunk_events: int = 65536) -> FileReport:
    """Check one file (layout, then values block by block); never raises for a bad file.

    A malformed ``names`` mapping file still raises (``FileNotFoundError`` or
    :class:`gelato.layouts.LayoutError`): that is the caller's mistake, not the file's.
    """
    path, mapping = Path(path), resolve_names(names)
    report = FileReport(path)
    try:
        f = open_event_file(path)
    except EventFileError as exc:
        report.problems.append(Problem(str(path), FILE_LEVEL, _without_path(path, str(exc))))
        return report

    with f:
        try:
            layout, issues = inspect_layout(f, path, mapping)
        except (OSError, RuntimeError, KeyError, TypeError) as exc:
            report.problems.append(Problem(str(path), FILE_LEVEL, f"unreadable HDF5 structure ({exc})"))
            return report
        report.problems += [Problem(str(path), issue.dataset, issue.message) for issue in issues]
        if layout is None:
            return report

        report.n_events, report.layout = layout.n_events, layout.describe()
        if layout.n_events == 0:
            report.problems.append(Problem(str(path), layout.datasets_of(range(len(FEATURE_NAMES))),
                                           "holds no events (N = 0); expected at least one event"))
            return report
        _check_values(report, f, layout, chunk_events)
    log.debug("%s: %d events, %d problems", path, report.n_events, len(report.problems))
    return report


def validate_event_file(path: str | os.PathLike[str], names: Names = None) -> list[Problem]:
    """Every problem of one event file (empty list when it is valid); see the module docstring."""
    return check_event_file(path, names).problems


def require_valid(paths: list[Path], names: Names = None, physical: bool = True) -> dict[Path, int]:
    """Check every file; return their event counts, or raise :class:`EventFileError` listing all problems.

    ``physical=False`` lets values outside the physical range through (:attr:`Problem.physical`;
    ``gelato bench`` scores the firmware's edge cases) and logs how many there were.
    """
    mapping = resolve_names(names)
    reports = [check_event_file(path, mapping) for path in paths]
    allowed = [p for report in reports for p in report.problems if p.physical and not physical]
    if allowed:
        log.warning("%d physical-range problem(s) let through (e.g. %s); `gelato validate` lists them",
                    len(allowed), allowed[0])
    problems = [str(problem) for report in reports for problem in report.problems if problem not in allowed]
    if problems:
        raise EventFileError(f"{len(problems)} problem(s) in the input files (run `gelato validate` on them):\n  "
                             + "\n  ".join(problems))
    return {report.path: report.n_events for report in reports}
