"""Helpers of the input-robustness tests: physical events and writers for every accepted layout."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from gelato import features as F

FAMILIES = {"jets": (F.JET_OFFSET, F.N_JETS), "taus": (F.TAU_OFFSET, F.N_TAUS), "muons": (F.MUON_OFFSET, F.N_MUONS)}


def physical_events(n: int, seed: int = 0) -> np.ndarray:
    """(n, 44) float32 events that pass every check: pT-ordered, zero-padded, |phi| <= pi."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, F.N_FEATURES), np.float32)
    for offset, count in FAMILIES.values():
        present = rng.integers(0, count + 1, size=n)
        pt = -np.sort(-rng.exponential(30.0, size=(n, count)), axis=1) + 1.0
        keep = np.arange(count)[None, :] < present[:, None]
        block = np.stack([pt, rng.normal(0, 1.5, (n, count)), rng.uniform(-np.pi, np.pi, (n, count))], axis=2)
        block[~keep] = 0.0
        x[:, offset : offset + 3 * count] = block.reshape(n, -1)
    x[:, F.MET_OFFSET] = rng.exponential(20.0, n)
    x[:, F.MET_OFFSET + 1] = rng.uniform(-np.pi, np.pi, n)
    return x


def write_matrix(path: Path, x: np.ndarray, names=F.FEATURE_NAMES, dataset: str = "features", **extra) -> Path:
    """One (N, M) dataset with a feature_names attribute (names=None: no attribute)."""
    with h5py.File(path, "w") as f:
        ds = f.create_dataset(dataset, data=x)
        if names is not None:
            ds.attrs["feature_names"] = np.array(list(names), dtype=h5py.string_dtype())
        for key, value in extra.items():
            f.create_dataset(key, data=value)
    return path


def write_objects(path: Path, x: np.ndarray, names: dict[str, str] | None = None, **extra) -> Path:
    """Per-object datasets jets (N,6,3), taus (N,4,3), muons (N,4,3), MET (N,2); ``names`` renames them."""
    names = names or {}
    with h5py.File(path, "w") as f:
        f.create_dataset(names.get("jets", "jets"), data=F.jets(x))
        f.create_dataset(names.get("taus", "taus"), data=F.taus(x))
        f.create_dataset(names.get("muons", "muons"), data=F.muons(x))
        f.create_dataset(names.get("MET", "MET"), data=F.met(x))
        for key, value in extra.items():
            f.create_dataset(key, data=value)
    return path


def write_columns(path: Path, x: np.ndarray, names=F.FEATURE_NAMES, group: str = "", skip=(), **extra) -> Path:
    """One (N,) dataset per feature, under ``names`` (optionally inside ``group``)."""
    with h5py.File(path, "w") as f:
        where = f.require_group(group) if group else f
        for column, name in enumerate(names):
            if name not in skip:
                where.create_dataset(name, data=x[:, column])
        for key, value in extra.items():
            where.create_dataset(key, data=value)
    return path


def write_table(path: Path, x: np.ndarray, names=F.FEATURE_NAMES, dataset: str = "events", **extra_fields) -> Path:
    """One compound (N,) dataset with a field per feature (NumPy structured array), plus extra fields."""
    dtype = [(name, x.dtype) for name in names] + [(key, np.asarray(v).dtype) for key, v in extra_fields.items()]
    table = np.zeros(len(x), dtype=dtype)
    for column, name in enumerate(names):
        table[name] = x[:, column]
    for key, values in extra_fields.items():
        table[key] = values
    with h5py.File(path, "w") as f:
        f.create_dataset(dataset, data=table)
    return path
