"""Input layouts of event files: which datasets hold the 44 features, and under what names.

Shared by every stage through :mod:`gelato.io`.  Productions spell and arrange the same
Level-1 inputs differently, so an event file may hold them as

* one 2-D matrix: a dataset ``features`` of shape (N, 44) in :data:`FEATURE_NAMES` order,
  or any (N, M) dataset whose ``feature_names`` (or ``names``, ``columns``) attribute names
  its columns, in any order, extra columns ignored;
* per-object datasets: ``jets`` (N, 6, 3), ``taus`` (N, 4, 3), ``muons`` (N, 4, 3) with
  (pT [GeV], eta, phi [rad]) on the last axis, and ``MET`` (N, 2) with (pT [GeV], phi);
* one 1-D dataset of shape (N,) per feature;
* a compound (record) dataset of shape (N,) with one field per feature (for example a
  NumPy structured array), optionally with ``weight`` and ``l1_menu_pass`` fields;

or a mix of these, anywhere in the file's group tree, plus an optional ``weight`` (N,) and
an optional ``l1_menu_pass`` (N,) flag carrying the existing L1 menu's decision.  Names are
matched case-insensitively through a :class:`NameMapping` (packaged default:
``gelato/schemas/feature_aliases.yaml``; a user file is merged on top).

This module only works out the layout and reads blocks of rows; checking the values is
left to :mod:`gelato.validation`, and the public reading API is :mod:`gelato.io`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import h5py
import jsonschema
import numpy as np
import yaml

from gelato.features import FEATURE_NAMES, N_FEATURES, N_JETS, N_MUONS, N_TAUS

log = logging.getLogger(__name__)

ALIASES_FILE = "feature_aliases.yaml"
ALIASES_SCHEMA = "feature_aliases.schema.json"
NAMES_ATTRIBUTES = ("feature_names", "names", "columns")
FIELDS_ATTRIBUTES = ("fields", "field_names", "columns", "feature_names")

#: Per-object roles: (first feature column, number of objects, quantities on the last axis).
OBJECT_ROLES: dict[str, tuple[int, int, tuple[str, ...]]] = {
    "jets": (0, N_JETS, ("pt", "eta", "phi")),
    "taus": (3 * N_JETS, N_TAUS, ("pt", "eta", "phi")),
    "muons": (3 * (N_JETS + N_TAUS), N_MUONS, ("pt", "eta", "phi")),
    "MET": (3 * (N_JETS + N_TAUS + N_MUONS), 1, ("pt", "phi")),
}
FILE_LEVEL = "(file)"  # the "dataset" of a problem that concerns the whole file
DATASET_ROLES = ("features", *OBJECT_ROLES, "weight", "l1_menu_pass")
FEATURE_KINDS = "fiu"
WEIGHT_KINDS = "fiu"
MENU_KINDS = "biu"


class LayoutError(ValueError):
    """A name-mapping file is malformed or contradicts itself."""


class EventFileError(ValueError):
    """An event file is missing, unreadable or not in an accepted layout (re-exported by :mod:`gelato.io`)."""


class DatasetReadError(EventFileError):
    """Reading rows of one dataset failed (truncated or corrupt file); ``dataset`` names it."""

    def __init__(self, path: Path, dataset: str, detail: str) -> None:
        super().__init__(f"{path}: dataset '{dataset}': {detail}")
        self.dataset = dataset
        self.detail = detail


# ----------------------------------------------------------------------------- names


@dataclass(frozen=True)
class NameMapping:
    """Aliases (lower case) of the 44 features and of the dataset roles, and where they came from."""

    features: dict[str, str]
    roles: dict[str, str]
    sources: tuple[str, ...]

    def feature(self, name: str) -> str | None:
        """Canonical feature name of ``name``, or None."""
        return self.features.get(name.lower())

    def role(self, name: str) -> str | None:
        """Dataset role (``jets``, ``weight``, ...) of the dataset name ``name``, or None."""
        return self.roles.get(name.lower())


def _aliases_schema() -> dict[str, Any]:
    schema = json.loads(resources.files("gelato").joinpath("schemas", ALIASES_SCHEMA).read_text())
    schema["propertyNames"] = {"enum": [*FEATURE_NAMES, *DATASET_ROLES]}
    return schema


def _parse_aliases(text: str, source: str) -> dict[str, list[str]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LayoutError(f"{source}: not valid YAML ({exc})") from None
    data = {} if data is None else data
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(_aliases_schema()).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise LayoutError(
            f"{source}: {where}: {error.message}; expected a mapping of canonical name "
            "(one of the 44 features or features, jets, taus, muons, MET, weight, l1_menu_pass) -> list of aliases"
        )
    return data


def _add_aliases(table: dict[str, str], canonical: str, aliases: list[str], source: str, claimed: set[str]) -> None:
    """Enter ``aliases`` of ``canonical``; a file may override earlier files but not contradict itself."""
    for alias in aliases:
        key = alias.lower()
        previous = table.get(key)
        if previous is not None and previous != canonical and (key in claimed or key == previous.lower()):
            raise LayoutError(f"{source}: alias {alias!r} of {canonical!r} is already a name of {previous!r}")
        if previous is not None and previous != canonical:
            log.info("%s: alias %r now means %r (was %r)", source, alias, canonical, previous)
        table[key] = canonical
        claimed.add(key)


def load_name_mapping(path: str | os.PathLike[str] | None = None) -> NameMapping:
    """The packaged name mapping, with the user file ``path`` (YAML) merged on top of it.

    Raises ``FileNotFoundError`` for a missing file and :class:`LayoutError` naming the key
    for a malformed one or for an alias that would mean two different things.
    """
    packaged = resources.files("gelato").joinpath("schemas", ALIASES_FILE).read_text()
    layers = [(_parse_aliases(packaged, f"packaged {ALIASES_FILE}"), f"packaged {ALIASES_FILE}")]
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: name-mapping file not found")
        layers.append((_parse_aliases(path.read_text(), str(path)), str(path)))

    features: dict[str, str] = {name.lower(): name for name in FEATURE_NAMES}
    roles: dict[str, str] = {name.lower(): name for name in DATASET_ROLES}
    for data, source in layers:
        claimed: set[str] = set()
        for canonical, aliases in data.items():
            _add_aliases(roles if canonical in DATASET_ROLES else features, canonical, aliases, source, claimed)
    return NameMapping(features=features, roles=roles, sources=tuple(source for _, source in layers))


_DEFAULT_MAPPING: NameMapping | None = None


def resolve_names(names: NameMapping | str | os.PathLike[str] | None) -> NameMapping:
    """A :class:`NameMapping` from a mapping, a YAML file path, or None (packaged default, cached)."""
    global _DEFAULT_MAPPING
    if isinstance(names, NameMapping):
        return names
    if names is not None:
        return load_name_mapping(names)
    if _DEFAULT_MAPPING is None:
        _DEFAULT_MAPPING = load_name_mapping()
    return _DEFAULT_MAPPING


# ----------------------------------------------------------------------------- layouts

EXPECTED_LAYOUTS = (
    f"expected a dataset 'features' of shape (N, {N_FEATURES}) (or any (N, M) dataset whose 'feature_names' "
    f"attribute names its columns), or per-object datasets jets (N, {N_JETS}, 3), taus (N, {N_TAUS}, 3), "
    f"muons (N, {N_MUONS}, 3) and MET (N, 2), or one (N,) dataset (or compound field) per feature named like "
    f"{FEATURE_NAMES[0]} (other spellings through a --names mapping file)"
)


@dataclass(frozen=True)
class FeatureSource:
    """One dataset that fills some of the 44 feature columns.

    ``selector[k]`` is the position, in the dataset's rows flattened to (N, -1), of the
    value that goes to feature column ``columns[k]``.  For a compound dataset (kind
    ``table``) the rows are first made of its ``fields``, in that order.
    """

    dataset: str
    kind: str
    columns: tuple[int, ...]
    selector: tuple[int, ...]
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColumnRef:
    """A per-event (N,) column: a whole dataset, or one field of a compound dataset."""

    dataset: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.dataset}[{self.field}]" if self.field else self.dataset


@dataclass(frozen=True)
class LayoutIssue:
    """Why a file's layout cannot be read: the dataset(s) concerned and what is wrong."""

    dataset: str
    message: str

    def __str__(self) -> str:
        if self.dataset == FILE_LEVEL:
            return self.message
        noun = "datasets" if ", " in self.dataset or " ... " in self.dataset else "dataset"
        return f"{noun} '{self.dataset}': {self.message}"


@dataclass(frozen=True)
class EventLayout:
    """Where the features, weights and menu decisions of one file live."""

    path: Path
    n_events: int
    sources: tuple[FeatureSource, ...]
    weight: ColumnRef | None = None
    menu: ColumnRef | None = None

    def describe(self) -> str:
        """Short human description, e.g. ``features (matrix), weight, l1_menu_pass``."""
        kinds = sorted({s.kind for s in self.sources})
        if kinds == ["column"]:
            parts = [f"{len(self.sources)} per-feature datasets"]
        else:
            parts = [f"{s.dataset} ({s.kind})" for s in self.sources if s.kind != "column"]
            n_columns = sum(s.kind == "column" for s in self.sources)
            parts += [f"{n_columns} per-feature datasets"] if n_columns else []
        return ", ".join(parts + [str(ref) for ref in (self.weight, self.menu) if ref])

    def datasets_of(self, columns: list[int] | range) -> str:
        """The dataset(s) that hold the given feature columns, comma-separated in file order."""
        wanted = set(columns)
        return _dataset_list([s.dataset for s in self.sources if wanted.intersection(s.columns)])

    def read(self, f: h5py.File, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Rows [start, stop): features (n, 44) float32 in canonical order, raw weights, raw menu flags."""
        features = np.empty((stop - start, N_FEATURES), np.float32)
        for source in self.sources:
            if self._is_whole_matrix(f, source):  # one (N, 44) dataset in canonical order: no copy
                self._read_into(f, source.dataset, start, stop, features)
                continue
            block = self._rows(f, source.dataset, start, stop, list(source.fields) or None)
            if source.fields:
                block = np.stack([block[name] for name in source.fields], axis=1)
            features[:, source.columns] = block.reshape(len(block), -1)[:, source.selector]
        weights = self._rows(f, self.weight.dataset, start, stop, self.weight.field) if self.weight else None
        menu = self._rows(f, self.menu.dataset, start, stop, self.menu.field) if self.menu else None
        return features, weights, menu

    @staticmethod
    def _is_whole_matrix(f: h5py.File, source: FeatureSource) -> bool:
        canonical = tuple(range(N_FEATURES))
        return (source.columns == canonical and source.selector == canonical and not source.fields
                and f[source.dataset].shape[1:] == (N_FEATURES,))

    def _read_into(self, f: h5py.File, dataset: str, start: int, stop: int, out: np.ndarray) -> None:
        try:
            if stop > start:
                f[dataset].read_direct(out, np.s_[start:stop])
        except (OSError, RuntimeError) as exc:
            detail = f"reading events {start}-{stop - 1} failed ({exc}); the file is truncated or corrupt"
            raise DatasetReadError(self.path, dataset, detail) from None

    def _rows(self, f: h5py.File, dataset: str, start: int, stop: int, fields: str | list[str] | None = None
              ) -> np.ndarray:
        try:
            return f[dataset].fields(fields)[start:stop] if fields else f[dataset][start:stop]
        except (OSError, RuntimeError) as exc:
            detail = f"reading events {start}-{stop - 1} failed ({exc}); the file is truncated or corrupt"
            raise DatasetReadError(self.path, dataset, detail) from None


def _labels(value: Any) -> list[str]:
    """Column names from an HDF5 attribute: an array of (byte) strings or one comma-separated string."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(value).ravel()]


def _dataset_list(datasets: list[str]) -> str:
    """Comma-separated dataset names; a long run (one dataset per feature) as 'first ... last (k datasets)'."""
    if len(datasets) <= 3:
        return ", ".join(datasets)
    return f"{datasets[0]} ... {datasets[-1]} ({len(datasets)} datasets)"


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


class _Survey:
    """Walks the datasets of one file and collects feature sources, per-event datasets and issues."""

    def __init__(self, names: NameMapping) -> None:
        self.names = names
        self.sources: list[FeatureSource] = []
        self.weights: list[ColumnRef] = []
        self.menus: list[ColumnRef] = []
        self.shapes: dict[str, tuple[int, ...]] = {}  # per-event datasets: first axis is the event
        self.issues: list[LayoutIssue] = []
        self.unrecognised: list[str] = []
        self.seen: list[str] = []
        self.refused: set[int] = set()  # columns a recognised but unusable dataset would have filled

    def issue(self, dataset: str, message: str) -> None:
        self.issues.append(LayoutIssue(dataset, message))

    def classify(self, name: str, ds: h5py.Dataset) -> None:
        base = name.rsplit("/", 1)[-1]
        role, feature = self.names.role(base), self.names.feature(base)
        if ds.shape is None:  # HDF5 null dataspace: a dataset without values
            self.seen.append(f"{name} (no values)")
            if role is not None or feature is not None:
                self.issue(name, f"holds no values (null dataspace); expected {_expected_shape(role, feature)}")
                self.refused.update(_role_columns(role, feature))
            return
        dtype = f"compound of {len(ds.dtype.names)} fields" if ds.dtype.names else str(ds.dtype)
        self.seen.append(f"{name} {_shape_text(ds.shape)} {dtype}")
        if ds.dtype.names and ds.ndim == 1:
            self._table(name, ds, named=role is not None or feature is not None)
        elif role in OBJECT_ROLES and ds.ndim >= 2:
            self._objects(name, ds, role)
        elif role == "features" and ds.ndim >= 2:
            self._matrix(name, ds, named=True)
        elif feature is not None and ds.ndim == 1:
            self._feature_source(name, ds, FeatureSource(name, "column", (FEATURE_NAMES.index(feature),), (0,)))
        elif role in ("weight", "l1_menu_pass"):
            self._per_event_flag(ColumnRef(name), ds.dtype, ds.shape, role)
        elif role is not None or feature is not None:
            expected = _expected_shape(role, feature)
            self.issue(name, f"shape {_shape_text(ds.shape)} does not fit its name; expected {expected}")
            self.refused.update(_role_columns(role, feature))
        elif ds.ndim == 2 and any(a in ds.attrs for a in NAMES_ATTRIBUTES):
            self._matrix(name, ds, named=False)
        else:
            self.unrecognised.append(name)

    def broken_link(self, name: str, target: str) -> None:
        base = name.rsplit("/", 1)[-1]
        self.seen.append(f"{name} (broken link)")
        self.issue(name, f"link to {target} cannot be resolved (target file or object missing)")
        self.refused.update(_role_columns(self.names.role(base), self.names.feature(base)))

    def _feature_source(self, name: str, ds: h5py.Dataset, source: FeatureSource) -> None:
        if ds.dtype.kind not in FEATURE_KINDS:
            self.issue(name, f"dtype {ds.dtype}, expected floating point (float32) features")
        self.sources.append(source)
        self.shapes[name] = ds.shape

    def _matrix(self, name: str, ds: h5py.Dataset, named: bool) -> None:
        attr = next((a for a in NAMES_ATTRIBUTES if a in ds.attrs), None)
        if attr is None:
            if ds.ndim == 2 and ds.shape[1] == N_FEATURES:
                identity = tuple(range(N_FEATURES))
                self._feature_source(name, ds, FeatureSource(name, "matrix", identity, identity))
            else:
                self.issue(name, f"shape {_shape_text(ds.shape)}, expected (N, {N_FEATURES}) "
                                 f"or a '{NAMES_ATTRIBUTES[0]}' attribute naming its columns")
                self.refused.update(range(N_FEATURES))
            return

        labels = _labels(ds.attrs[attr])
        if ds.ndim != 2 or len(labels) != ds.shape[1]:
            self.issue(name, f"attribute '{attr}' has {len(labels)} names for shape {_shape_text(ds.shape)}, "
                             "expected one name per column of an (N, M) dataset")
            self.refused.update(_role_columns("features", None) if named else ())
            return
        mapped = [(i, self.names.feature(label)) for i, label in enumerate(labels)]
        if not named and all(feature is None for _, feature in mapped):
            return
        self.unrecognised += [f"{name}[{label!r}]" for label, (_, feature) in zip(labels, mapped) if feature is None]

        first_column: dict[str, int] = {}
        for i, feature in mapped:
            if feature is not None and feature in first_column:
                j = first_column[feature]
                self.issue(name, f"duplicate feature {feature}: columns {j} ({labels[j]!r}) and {i} ({labels[i]!r})")
            elif feature is not None:
                first_column[feature] = i
        columns = tuple(FEATURE_NAMES.index(f) for f in first_column)
        self._feature_source(name, ds, FeatureSource(name, "matrix", columns, tuple(first_column.values())))

    def _objects(self, name: str, ds: h5py.Dataset, role: str) -> None:
        first, count, quantities = OBJECT_ROLES[role]
        expected = (len(quantities),) if role == "MET" else (count, len(quantities))
        if ds.shape[1:] != expected:
            self.issue(name, f"shape {_shape_text(ds.shape)}, expected {_shape_text(('N', *expected))} for {role}")
            self.refused.update(_role_columns(role, None))
            return

        attr = next((a for a in FIELDS_ATTRIBUTES if a in ds.attrs), None)
        fields = [label.lower() for label in _labels(ds.attrs[attr])] if attr else list(quantities)
        fields = ["pt" if label == "et" else label for label in fields]
        if sorted(fields) != sorted(quantities):
            self.issue(name, f"attribute '{attr}' names the last axis {fields}, "
                             f"expected {list(quantities)} in any order")
            self.refused.update(_role_columns(role, None))
            return

        width = len(quantities)
        columns = tuple(first + 3 * i + k for i in range(count) for k in range(width))
        selector = tuple(i * width + fields.index(q) for i in range(count) for q in quantities)
        self._feature_source(name, ds, FeatureSource(name, "objects", columns, selector))

    def _table(self, name: str, ds: h5py.Dataset, named: bool) -> None:
        fields = list(ds.dtype.names)
        features = [self.names.feature(field) for field in fields]
        if all(feature is None for feature in features):
            if named:  # e.g. a compound dataset called 'features' whose fields name no feature
                self.issue(name, f"compound dataset whose fields ({_short_list(fields, 5)}) name no feature; "
                                 f"expected fields named like {FEATURE_NAMES[0]}")
                self.refused.update(range(N_FEATURES))
            return
        self.unrecognised += [f"{name}[{field!r}]" for field, feature in zip(fields, features)
                              if feature is None and self.names.role(field) not in ("weight", "l1_menu_pass")]

        used: dict[str, str] = {}
        for field, feature in zip(fields, features):
            if feature is not None and feature in used:
                self.issue(name, f"duplicate feature {feature}: fields {used[feature]!r} and {field!r}")
            elif feature is not None:
                used[feature] = field
                if ds.dtype[field].kind not in FEATURE_KINDS:
                    self.issue(name, f"field {field!r} has dtype {ds.dtype[field]}, expected floating point features")
        columns = tuple(FEATURE_NAMES.index(feature) for feature in used)
        self.sources.append(FeatureSource(name, "table", columns, tuple(range(len(used))), tuple(used.values())))
        self.shapes[name] = ds.shape

        for field in fields:
            role = self.names.role(field)
            if role in ("weight", "l1_menu_pass"):
                self._per_event_flag(ColumnRef(name, field), ds.dtype[field], ds.shape, role)

    def _per_event_flag(self, ref: ColumnRef, dtype: np.dtype, shape: tuple[int, ...], role: str) -> None:
        kinds, found = (WEIGHT_KINDS, self.weights) if role == "weight" else (MENU_KINDS, self.menus)
        what = "per-event weights (float)" if role == "weight" else "per-event L1 menu decisions (bool or 0/1 int)"
        if len(shape) != 1:
            self.issue(str(ref), f"shape {_shape_text(shape)}, expected (N,) {what}")
        elif dtype.kind not in kinds:
            self.issue(str(ref), f"dtype {dtype}, expected {what}")
        if found:
            self.issue(str(ref), f"duplicate {role} datasets: {found[0]} and {ref}")
        found.append(ref)
        if len(shape) >= 1 and ref.field is None:
            self.shapes[ref.dataset] = shape


def _role_columns(role: str | None, feature: str | None) -> range | tuple[int, ...]:
    """Feature columns a dataset of this role (or this feature name) provides."""
    if role in OBJECT_ROLES:
        first, count, quantities = OBJECT_ROLES[role]
        return range(first, first + 3 * (count - 1) + len(quantities))
    if role == "features":
        return range(N_FEATURES)
    return (FEATURE_NAMES.index(feature),) if feature is not None else ()


def _expected_shape(role: str | None, feature: str | None) -> str:
    if role in OBJECT_ROLES:
        _, count, quantities = OBJECT_ROLES[role]
        return "(N, 2)" if role == "MET" else f"(N, {count}, {len(quantities)})"
    if role == "features":
        return f"(N, {N_FEATURES})"
    return f"(N,) per-event values of {feature or role}"


def _link_target(link: Any) -> str:
    if isinstance(link, h5py.ExternalLink):
        return f"{link.filename}:{link.path}"
    return str(getattr(link, "path", link))


def _all_datasets(f: h5py.File) -> tuple[dict[str, h5py.Dataset], dict[str, str]]:
    """Every dataset reachable from the root (through soft and external links too), and the broken links."""
    found: dict[str, h5py.Dataset] = {}
    broken: dict[str, str] = {}

    def visit(name: str, link: Any) -> None:  # returning anything but None would stop the walk
        try:
            obj = f.get(name)
        except (KeyError, OSError, RuntimeError, ValueError):
            obj = None
        if obj is None:
            broken[name] = _link_target(link)
        elif isinstance(obj, h5py.Dataset) and obj not in found.values():  # two links, one dataset: keep one
            found[name] = obj

    f.visititems_links(visit)
    return found, broken


def _short_list(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" ... and {len(items) - limit} more" if len(items) > limit else "")


def _coverage_issues(survey: _Survey) -> list[LayoutIssue]:
    providers: dict[int, list[str]] = {}
    for source in survey.sources:
        for column in source.columns:
            providers.setdefault(column, []).append(source.dataset)
    issues = [LayoutIssue(", ".join(ds), f"duplicate feature {FEATURE_NAMES[c]}: provided by {' and '.join(ds)}")
              for c, ds in sorted(providers.items()) if len(ds) > 1]

    missing = [FEATURE_NAMES[c] for c in range(N_FEATURES) if c not in providers and c not in survey.refused]
    if missing and not survey.sources and not survey.issues:
        issues.append(LayoutIssue(FILE_LEVEL, f"unknown layout: found {_short_list(survey.seen, 12) or 'no datasets'}; "
                                            f"{EXPECTED_LAYOUTS}"))
    elif missing:
        hint = f"; unrecognised names: {_short_list(survey.unrecognised)}" if survey.unrecognised else ""
        has_columns = any(s.kind == "column" for s in survey.sources)
        where = _dataset_list(missing) if has_columns else _dataset_list([s.dataset for s in survey.sources])
        where = where or FILE_LEVEL
        issues.append(LayoutIssue(where,
                                  f"missing {len(missing)} of {N_FEATURES} features: {_short_list(missing)}{hint}; "
                                  f"found {_short_list(survey.seen, 12)}"))
    return issues


def _length_issues(survey: _Survey) -> tuple[int, list[LayoutIssue]]:
    if not survey.shapes:
        return 0, []
    reference = survey.sources[0].dataset if survey.sources else next(iter(survey.shapes))
    n_events = survey.shapes[reference][0]
    issues = [LayoutIssue(name, f"shape {_shape_text(shape)}, expected {_shape_text((n_events, *shape[1:]))} like "
                                f"{reference}: every per-event dataset needs the same number of events")
              for name, shape in survey.shapes.items() if shape[0] != n_events]
    return n_events, issues


def inspect_layout(f: h5py.File, path: Path, names: NameMapping) -> tuple[EventLayout | None, list[LayoutIssue]]:
    """Work out the layout of an open file; returns (layout, []) or (None, every issue found)."""
    survey = _Survey(names)
    datasets, broken = _all_datasets(f)
    for name, ds in datasets.items():
        survey.classify(name, ds)
    for name, target in broken.items():
        survey.broken_link(name, target)
    survey.sources.sort(key=lambda source: min(source.columns, default=N_FEATURES))

    n_events, length_issues = _length_issues(survey)
    issues = survey.issues + _coverage_issues(survey) + length_issues
    if issues:
        return None, issues
    weight, menu = next(iter(survey.weights), None), next(iter(survey.menus), None)
    layout = EventLayout(path, n_events, tuple(survey.sources), weight, menu)
    log.debug("%s: layout %s, %d events", path, layout.describe(), n_events)
    return layout, []
