"""A baseline Level-1 menu emulated on the 44 GELATO features (calibration stage).

The anomaly trigger is calibrated for an *added unique* rate: events that no other L1 item
accepts.  Our event files carry only the objects the encoder sees (6 jets, 4 taus, 4 muons,
MET), so the menu is emulated from those: single- and multi-object items with a pT
threshold and an |eta| window, and a MET item.  An object counts for an item when

    pt >= pt_min  and  eta_min <= |eta| < eta_max,

and the item fires when at least ``count`` objects count (MET: ``MET_pt >= pt_min``).
The thresholds live in ``configs/calibration.yaml``; there are no electron or photon items
because the features hold no EM objects, which makes this menu a lower bound on the real
one.  An event file can instead carry the real menu decision as a per-event flag
(``l1_menu_pass``, or an alias known to :mod:`gelato.layouts`); the pipeline then uses it
when ``use_file_decision`` is set, see :mod:`.scoring`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from gelato import features as F
from gelato.calibration import kernels

log = logging.getLogger(__name__)

OBJECT_BLOCKS = {"jet": F.jets, "tau": F.taus, "muon": F.muons}
OBJECTS = (*OBJECT_BLOCKS, "met")


#: First column and number of objects of each object kind; MET has no objects to count (see
#: :func:`.kernels.menu_items`).
OBJECT_COLUMNS = {"jet": (F.JET_OFFSET, F.N_JETS), "tau": (F.TAU_OFFSET, F.N_TAUS),
                  "muon": (F.MUON_OFFSET, F.N_MUONS), "met": (F.MET_OFFSET, 0)}


@functools.lru_cache(maxsize=32)
def _item_table(items: tuple[MenuItem, ...]) -> tuple[np.ndarray, ...]:
    """The items as the arrays of :func:`.kernels.menu_items`, thresholds in float32 like the features (as
    numpy compares a float32 array with a Python float)."""
    thresholds = np.float32
    first, n_objects = (np.array([OBJECT_COLUMNS[i.obj][j] for i in items], np.int64) for j in (0, 1))
    pt_min = np.array([i.pt_min for i in items], thresholds)
    eta_min = np.array([i.eta_min for i in items], thresholds)
    eta_max = np.array([np.inf if i.eta_max is None else i.eta_max for i in items], thresholds)
    return first, n_objects, pt_min, eta_min, eta_max, np.array([i.count for i in items], np.int64)


def object_pt_abs_eta(features: np.ndarray, obj: str) -> tuple[np.ndarray, np.ndarray]:
    """pT [GeV] and |eta| (N, n_objects) of one object kind, as contiguous arrays (shared by its items)."""
    block = OBJECT_BLOCKS[obj](features)
    return np.ascontiguousarray(block[:, :, 0]), np.abs(block[:, :, 1])


def any_per_row(flags: np.ndarray) -> np.ndarray:
    """Row-wise OR (N,) of a (N, k) bool array; all False when k = 0.

    Computed one column at a time: numpy's ``any(axis=1)`` over a few columns is about five
    times slower.
    """
    out = np.zeros(len(flags), bool)
    for column in range(flags.shape[1]):
        out |= flags[:, column]
    return out


def count_per_row(flags: np.ndarray) -> np.ndarray:
    """Row-wise count (N,) int32 of True in a (N, k) bool array, one column at a time (see :func:`any_per_row`)."""
    out = np.zeros(len(flags), np.int32)
    for column in range(flags.shape[1]):
        out += flags[:, column]
    return out


@dataclass(frozen=True)
class MenuItem:
    """One L1 item: at least ``count`` objects of kind ``obj`` with pT >= pt_min [GeV] in |eta| window."""

    name: str
    obj: str
    pt_min: float
    count: int = 1
    eta_max: float | None = None
    eta_min: float = 0.0

    def __post_init__(self) -> None:
        if self.obj not in OBJECTS:
            raise ValueError(f"menu item {self.name}: object {self.obj!r} is not one of {', '.join(OBJECTS)}")
        if self.obj == "met" and self.count != 1:
            raise ValueError(f"menu item {self.name}: a MET item takes count 1, got {self.count}")
        if self.count < 1 or self.pt_min < 0:
            raise ValueError(f"menu item {self.name}: need count >= 1 and pt_min >= 0")

    def fires(self, features: np.ndarray) -> np.ndarray:
        """Decision (N,) bool of this item on raw features (N, 44)."""
        if self.obj == "met":
            return F.met(features)[:, 0] >= self.pt_min
        return self.fires_on(*object_pt_abs_eta(features, self.obj))

    def fires_on(self, pt: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
        """Decision (N,) bool from the pT and |eta| (N, n_objects) of this item's object kind."""
        counted = (pt >= self.pt_min) & (pt > 0) & (abs_eta >= self.eta_min)
        if self.eta_max is not None:
            counted &= abs_eta < self.eta_max
        if self.count == 1:
            return any_per_row(counted)
        return count_per_row(counted) >= self.count

    def describe(self) -> str:
        """Human-readable condition, e.g. '>= 4 jet, pT >= 15 GeV, |eta| < 2.5'."""
        if self.obj == "met":
            return f"MET >= {self.pt_min:g} GeV"
        eta = f"{self.eta_min:g} <= |eta|" if self.eta_min > 0 else "|eta|"
        eta = f", {eta} < {self.eta_max:g}" if self.eta_max is not None else (f", {eta}" if self.eta_min > 0 else "")
        return f">= {self.count} {self.obj}, pT >= {self.pt_min:g} GeV{eta}"


@dataclass(frozen=True)
class Menu:
    """An OR of items; with ``use_file_decision`` an event file's own menu flag overrides it."""

    items: tuple[MenuItem, ...]
    use_file_decision: bool = True

    @classmethod
    def from_config(cls, config: Mapping) -> Menu:
        """Build from the ``menu`` block of the calibration config (already schema-checked)."""
        items = tuple(
            MenuItem(
                name=item["name"],
                obj=item["object"],
                pt_min=float(item["pt_min"]),
                count=int(item.get("count", 1)),
                eta_max=item.get("eta_max"),
                eta_min=float(item.get("eta_min", 0.0)),
            )
            for item in config["items"]
        )
        names = [i.name for i in items]
        if len(set(names)) != len(names):
            raise ValueError(f"menu item names must be unique, got {names}")
        return cls(items=items, use_file_decision=bool(config.get("use_file_decision", True)))

    @property
    def names(self) -> list[str]:
        return [item.name for item in self.items]

    def item_decisions(self, features: np.ndarray) -> np.ndarray:
        """Decisions (N, n_items) bool of every item (compiled for float32 features,
        :func:`.kernels.menu_items`; equal to each item's :meth:`MenuItem.fires`, tested)."""
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != F.N_FEATURES:
            raise ValueError(f"the menu needs features of shape (N, {F.N_FEATURES}), got {features.shape}")
        if not self.items:
            return np.empty((len(features), 0), bool)
        if features.dtype != np.float32:  # the compiled loop takes float32; other dtypes take numpy's
            return np.stack([item.fires(features) for item in self.items], axis=1)
        return kernels.menu_items(features, *_item_table(self.items))

    def accepts(self, features: np.ndarray) -> np.ndarray:
        """The menu decision (N,) bool: any item fires."""
        return any_per_row(self.item_decisions(features))

    def as_config(self) -> list[dict]:
        """The items as plain dicts (for summary.json)."""
        return [
            {"name": i.name, "object": i.obj, "count": i.count, "pt_min": i.pt_min, "eta_min": i.eta_min,
             "eta_max": i.eta_max, "condition": i.describe()}
            for i in self.items
        ]
