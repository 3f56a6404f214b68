"""The physics processes of the sample set: Pythia8 settings and truth-level selections.

Samples stage.  Each :class:`Process` names the Pythia8 strings that produce it at
sqrt(s) = 13.6 TeV and the truth requirement an event must meet to be kept: the
leading truth-jet pT window of a dijet slice, or the exact number of prompt electrons
and muons of the top-pair and ZZ samples.  Generation, pileup and L1 emulation live in
:mod:`gelato.samples.generate`; this module only says *what* is generated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import awkward as ak
import fastjet
import numpy as np

log = logging.getLogger(__name__)

#: Settings shared by every process: beam energy, quiet output, and particles with
#: c*tau > 10 mm (K0S, Lambda, ...) left stable, as in the ATLAS truth record.
COMMON_SETTINGS: tuple[str, ...] = (
    "Beams:eCM = 13600.",
    "Next:numberCount = 0",
    "Print:quiet = on",
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10.",
)

MINIMUM_BIAS_SETTINGS: tuple[str, ...] = ("SoftQCD:inelastic = on",)

TRUTH_JET_RADIUS = 0.4
LEPTON_IDS = (11, 13)
NEUTRINO_IDS = (12, 14, 16)


@dataclass(frozen=True)
class Process:
    """One sample: its Pythia strings and the truth selection applied to its events.

    ``alternate_settings`` (if any) are appended on even chunks (first entry) and odd
    chunks (second), e.g. to swap which W decays leptonically.
    """

    name: str
    description: str
    settings: tuple[str, ...]
    chunk_events: int = 2000
    leading_jet_window_gev: tuple[float, float] | None = None
    prompt_leptons: int | None = None
    lepton_parent_id: int | None = None
    alternate_settings: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def pythia_settings(self, chunk_index: int) -> list[str]:
        """All Pythia strings of a chunk (without the seed)."""
        extra = self.alternate_settings[chunk_index % 2] if self.alternate_settings else ()
        return [*COMMON_SETTINGS, *self.settings, *extra]

    def summary(self) -> dict:
        """Settings and selection as a JSON-friendly dictionary."""
        out = {"description": self.description, "common": list(COMMON_SETTINGS), "process": list(self.settings)}
        if self.alternate_settings:
            out["even_chunks"], out["odd_chunks"] = (list(s) for s in self.alternate_settings)
        if self.leading_jet_window_gev:
            out["leading_truth_jet_pt_gev"] = list(self.leading_jet_window_gev)
            out["truth_jets"] = f"anti-kT R={TRUTH_JET_RADIUS}, stable visible particles, no pileup"
        if self.prompt_leptons is not None:
            out["prompt_e_mu"] = self.prompt_leptons
            out["prompt_lepton_parent_id"] = self.lepton_parent_id
        return out


def _dijet(name: str, window: tuple[float, float], pthat: tuple[float, float]) -> Process:
    return Process(
        name=name,
        description=f"QCD dijets, leading truth jet pT in [{window[0]:g}, {window[1]:g}) GeV",
        settings=("HardQCD:all = on", f"PhaseSpace:pTHatMin = {pthat[0]:g}", f"PhaseSpace:pTHatMax = {pthat[1]:g}"),
        leading_jet_window_gev=window,
    )


_TTBAR = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "24:onMode = off")
_W_LEPTONIC = "11 13"
_W_OTHER = "1 2 3 4 5 15"

PROCESSES: dict[str, Process] = {
    p.name: p
    for p in (
        Process(
            name="zerobias",
            description="zero-bias crossings: one inelastic pp interaction plus Poisson(mu) pileup",
            settings=MINIMUM_BIAS_SETTINGS,
            chunk_events=10000,
        ),
        _dijet("jz1", (20.0, 60.0), (15.0, 80.0)),
        _dijet("jz2", (60.0, 160.0), (45.0, 200.0)),
        _dijet("jz4", (400.0, 800.0), (320.0, 1000.0)),
        Process(
            name="ttbar_1lep",
            description="top pairs, exactly one prompt e or mu from the W decays",
            settings=_TTBAR,
            prompt_leptons=1,
            lepton_parent_id=24,
            alternate_settings=(
                (f"24:onPosIfAny = {_W_LEPTONIC}", f"24:onNegIfAny = {_W_OTHER}"),
                (f"24:onPosIfAny = {_W_OTHER}", f"24:onNegIfAny = {_W_LEPTONIC}"),
            ),
        ),
        Process(
            name="ttbar_2lep",
            description="top pairs, both W -> e nu or mu nu (two prompt e/mu)",
            settings=(*_TTBAR, f"24:onIfAny = {_W_LEPTONIC}"),
            prompt_leptons=2,
            lepton_parent_id=24,
        ),
        Process(
            name="ZZ4lep",
            description="ZZ -> 4 leptons (e, mu), pure Z exchange (no gamma*)",
            settings=(
                "WeakDoubleBoson:ffbar2gmZgmZ = on",
                "WeakZ0:gmZmode = 2",
                "23:onMode = off",
                "23:onIfAny = 11 13",
            ),
            prompt_leptons=4,
            lepton_parent_id=23,
        ),
    )
}


def get_process(name: str) -> Process:
    """The process called ``name`` (``ValueError`` listing the known ones)."""
    if name not in PROCESSES:
        raise ValueError(f"unknown process {name!r}; expected one of {', '.join(PROCESSES)}")
    return PROCESSES[name]


# ------------------------------------------------------------------- truth selections


def leading_truth_jet_pt(final: ak.Array) -> np.ndarray:
    """Leading anti-kT R=0.4 jet pT [GeV] per event of stable visible particles (0 if none).

    ``final`` is a Pythia batch record (``nextBatch``) restricted to final-state particles.
    """
    absid = abs(final.id)
    visible = final[(absid != 12) & (absid != 14) & (absid != 16)]
    vectors = ak.zip({"px": visible.p.px, "py": visible.p.py, "pz": visible.p.pz, "E": visible.p.e})
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, TRUTH_JET_RADIUS)
    jets = fastjet.ClusterSequence(vectors, jetdef).inclusive_jets(min_pt=5.0)
    pt = np.sqrt(jets.px**2 + jets.py**2)
    return ak.to_numpy(ak.fill_none(ak.max(pt, axis=1), 0.0))


def prompt_lepton_indices(
    event_ids: np.ndarray, event_mother1: np.ndarray, final: np.ndarray, parent_id: int
) -> list[int]:
    """Final-state e/mu whose first ancestor of another flavour is ``parent_id`` (W or Z).

    Photon radiation leaves copies of the lepton in the record, so the walk climbs
    through mothers of the same identity first; leptons from tau or hadron decays have
    another parent and do not count.
    """
    prompt = []
    for i in np.nonzero(final & np.isin(np.abs(event_ids), LEPTON_IDS))[0]:
        j = i
        while event_ids[event_mother1[j]] == event_ids[i] and event_mother1[j] > 0:
            j = event_mother1[j]
        if abs(event_ids[event_mother1[j]]) == parent_id:
            prompt.append(int(i))
    return prompt


def count_prompt_leptons(event_ids: np.ndarray, event_mother1: np.ndarray, final: np.ndarray, parent_id: int) -> int:
    """Number of prompt e/mu of one event (see :func:`prompt_lepton_indices`)."""
    return len(prompt_lepton_indices(event_ids, event_mother1, final, parent_id))


def prompt_lepton_counts(record: ak.Array, parent_id: int) -> np.ndarray:
    """Number of prompt e/mu per event of a Pythia batch record (see :func:`count_prompt_leptons`)."""
    ids, mothers, status = (ak.to_numpy(ak.flatten(record[k])) for k in ("id", "mother1", "status"))
    bounds = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(record.id)))])
    return np.array(
        [
            count_prompt_leptons(ids[a:b], mothers[a:b], status[a:b] > 0, parent_id)
            for a, b in zip(bounds[:-1], bounds[1:])
        ],
        dtype=np.int64,
    )


def select(process: Process, record: ak.Array) -> np.ndarray:
    """Boolean mask of the events of a Pythia batch record that the process keeps."""
    keep = np.ones(len(record), dtype=bool)
    if process.leading_jet_window_gev is not None:
        lo, hi = process.leading_jet_window_gev
        lead = leading_truth_jet_pt(record[record.status > 0])
        keep &= (lead >= lo) & (lead < hi)
    if process.prompt_leptons is not None:
        keep &= prompt_lepton_counts(record, process.lepton_parent_id) == process.prompt_leptons
    return keep
