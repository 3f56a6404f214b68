"""The seed paper's six findings (its section 3), measured on our samples (calibration stage).

Each finding of the paper is turned into a statistic with an uncertainty and a stated
criterion that decides whether it holds here: "yes", "no", or "inconclusive" when the
uncertainty straddles the criterion's boundary (rules in :mod:`.resampling`, numbers
in :class:`FindingSettings`).  All statistics use the bit-accurate (emulated) firmware
scores, the trigger's truth, and the emulated thresholds.  The criteria are fixed before
looking at any sample and are never adjusted to make a finding hold.

The per-event inputs are the columns of :class:`EventColumns` (score, weight, leading
jets, jet multiplicity, dijet mass, muons), read from the score files of
:mod:`.scoring` by :func:`load_event_columns`.  :func:`measure_findings` returns a
JSON-ready dict; :mod:`.findings_report` renders it as markdown.  The computations of
each finding live in :mod:`.findings_kinematics` (1-3) and :mod:`.findings_efficiency`
(4-6); this module holds the inputs, the settings and the assembly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from gelato import features as F
from gelato.calibration.resampling import MAX_BOOTSTRAP_EVENTS, N_RESAMPLES, SEED

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventColumns:
    """Per-event quantities of one process that the findings use (pT and masses in GeV)."""

    process: str
    score: np.ndarray
    weight: np.ndarray
    jet_pt: np.ndarray  # (N, 2): leading and subleading jet pT, 0 where absent
    n_jets: np.ndarray
    mjj: np.ndarray  # 0 with fewer than two jets
    muon_pt: np.ndarray  # (N, 4)
    muon_eta: np.ndarray  # (N, 4)

    def __len__(self) -> int:
        return len(self.score)


def event_columns(
    process: str, features: np.ndarray, score: np.ndarray, weight: np.ndarray | None = None
) -> EventColumns:
    """The columns of :class:`EventColumns` from raw features (N, 44) and scores (N,)."""
    features = np.asarray(features, dtype=np.float32)
    score = np.asarray(score, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != F.N_FEATURES or len(features) != len(score):
        raise ValueError(f"{process}: need features (N, {F.N_FEATURES}) and N scores, "
                         f"got {features.shape} and {score.shape}")
    weight = np.ones(len(score)) if weight is None else np.asarray(weight, dtype=np.float64)
    jets, muons = F.jets(features), F.muons(features)
    return EventColumns(process, score, weight, jets[:, :2, 0].astype(np.float64), F.jet_multiplicity(features),
                        F.dijet_mass(features), muons[:, :, 0].astype(np.float64), muons[:, :, 1].astype(np.float64))


def load_event_columns(path: Path, chunk_events: int = 65536) -> EventColumns:
    """Read a score file of :mod:`.scoring` (emulated score, weight, features in chunks)."""
    with h5py.File(path, "r") as f:
        missing = [k for k in ("features", "score_emulated", "weight") if k not in f]
        if missing:
            raise ValueError(f"{path}: not a score file, dataset(s) {', '.join(missing)} missing (expected the output "
                             "of `gelato calibrate` in build/scores/)")
        process = str(f.attrs.get("process", path.stem))
        score, weight = f["score_emulated"][:], f["weight"][:]
        parts = [event_columns(process, f["features"][s : s + chunk_events], score[s : s + chunk_events],
                               weight[s : s + chunk_events]) for s in range(0, len(score), chunk_events)]
    if not parts:
        return event_columns(process, np.zeros((0, F.N_FEATURES), np.float32), score, weight)
    fields = {k: np.concatenate([getattr(p, k) for p in parts]) for k in asdict(parts[0]) if k != "process"}
    return EventColumns(process, **fields)


@dataclass(frozen=True)
class FindingSettings:
    """Every number a criterion uses (see docs/findings.md for why each is what it is)."""

    n_resamples: int = N_RESAMPLES
    seed: int = SEED
    #: Samples above this many events are bootstrapped on a subsample (rescaled, see resampling.bootstrap).
    bootstrap_max_events: int = MAX_BOOTSTRAP_EVENTS
    #: Equal-population bins of leading-jet pT for the score profile (finding 1, monotonicity).
    profile_bins: int = 10
    #: Significance (sigmas) at which an effect is claimed, and below which it is denied.
    yes_sigma: float = 3.0
    no_sigma: float = 2.0
    #: Fraction of a process's highest scores whose jet multiplicity is compared (finding 2).
    top_fraction: float = 0.01
    #: The paper's score value "1" (finding 2); our score scale differs, see the report.
    paper_score_cut: float = 1.0
    #: Largest allowed fraction of jz1 events with < 6 jets at or above that score.
    max_low_multiplicity_fraction: float = 0.01
    #: |Spearman rho| below which a correlation counts as negligible (finding 3).
    negligible_rho: float = 0.1
    #: Relative efficiency change over the muon pT range that separates flat from rising (finding 5).
    flat_relative_change: float = 0.5
    #: Rate [Hz] whose threshold decides findings 3b and 5 (the closest configured rate is used).
    verdict_rate_hz: int = 1000


#: The processes the paper names in a finding, by its sample names here.
JZ1, JZ4, ZZ4LEP = "jz1", "jz4", "ZZ4lep"
DIP_PROCESSES = ("ttbar_1lep", "ttbar_2lep", "ZZ4lep")


def verdict_rate(thresholds: Mapping[int, float], wanted: int) -> int:
    """The configured rate closest to ``wanted`` (lower on a tie)."""
    if not thresholds:
        raise ValueError("no thresholds given: the findings need the emulated threshold of at least one rate")
    return min(sorted(thresholds), key=lambda r: abs(r - wanted))


def measure_findings(
    columns: Mapping[str, EventColumns],
    thresholds: Mapping[int, float],
    settings: FindingSettings = FindingSettings(),
    plots: Mapping[str, str] | None = None,
) -> dict:
    """Measure all six findings on ``columns`` (process -> events) with emulated ``thresholds`` (Hz -> score).

    ``plots`` optionally maps a process to its score-distribution plot (finding 6 links it).
    Returns a JSON-ready dict: ``settings``, ``processes``, and ``findings`` (a list of rows,
    each with id, paper claim, statistic, criterion, per-process values, verdict, details).
    """
    from gelato.calibration import findings_efficiency as eff
    from gelato.calibration import findings_kinematics as kin

    processes = list(columns)
    if not processes:
        raise ValueError("no processes given to measure the findings on")
    thresholds = {int(r): float(t) for r, t in thresholds.items()}
    rows = [
        *kin.score_vs_jet_pt(columns, settings),
        *kin.score_vs_multiplicity(columns, settings),
        *kin.score_vs_mjj(columns, thresholds, settings),
        *eff.efficiency_vs_jet_pt(columns, thresholds, settings),
        eff.endcap_muons(columns, thresholds, settings),
        eff.process_ranking(columns, thresholds, settings, plots or {}),
    ]
    for row in rows:
        log.info("finding %s: %s", row["id"], row["verdict"])
    return json_safe({"settings": {**asdict(settings), "thresholds": {str(r): t for r, t in thresholds.items()}},
                      "processes": processes, "findings": rows})


def json_safe(value):
    """``value`` with numpy scalars made Python numbers and non-finite floats (undefined intervals) made None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return value


def finding_row(fid: str, claim: str, statistic: str, criterion: str, per_process: dict, verdict: str,
                details: dict | None = None) -> dict:
    """One row of the findings table (per_process: process -> {"text", "verdict", numbers...})."""
    return {"id": fid, "claim": claim, "statistic": statistic, "criterion": criterion,
            "per_process": per_process, "verdict": verdict, "details": details or {}}


def score_plot_links(processes: list[str], plots_dir: str = "calibration/plots") -> dict[str, str]:
    """Links (relative to reports/) to the calibration's score-distribution plot of each process."""
    return {p: f"{plots_dir}/score_{p}.png" for p in processes}


def findings_for_result(result, settings: FindingSettings = FindingSettings()) -> dict:
    """Measure the findings from a :class:`gelato.calibration.pipeline.CalibrationResult`.

    Uses the score files of the efficiency processes (not the zero-bias reference) and the
    emulated thresholds of every configured rate.
    """
    processes = [p for p in result.settings.processes if p in result.scored and p != result.settings.reference_process]
    columns = {p: load_event_columns(result.scored[p].path, result.settings.chunk_events) for p in processes}
    thresholds = {int(r): float(t["threshold"]) for r, t in result.thresholds["emulated"].items()}
    return measure_findings(columns, thresholds, settings, score_plot_links(processes))
