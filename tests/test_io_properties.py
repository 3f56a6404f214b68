"""Property tests: any layout and spelling reads back the same events; any single bad value is found."""

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from io_samples import physical_events, write_columns, write_matrix, write_objects, write_table

from gelato import features as F
from gelato.io import read_events, write_events
from gelato.layouts import load_name_mapping
from gelato.validation import validate_event_file

ALIASES = {}
for alias, canonical in load_name_mapping().features.items():
    ALIASES.setdefault(canonical, []).append(alias)
LAYOUTS = ("written", "matrix", "objects", "columns", "table")
FAST = settings(max_examples=25, deadline=None)


def _write(layout: str, path: Path, x: np.ndarray, spelled: list[str], order: list[int]) -> Path:
    if layout == "written":
        return write_events(path, x)
    if layout == "matrix":
        return write_matrix(path, x[:, order], names=[spelled[i] for i in order], dataset="l1")
    if layout == "objects":
        return write_objects(path, x)
    if layout == "columns":
        return write_columns(path, x, names=spelled)
    return write_table(path, x, names=spelled)


@FAST
@given(n=st.integers(1, 30), seed=st.integers(0, 2**16), layout=st.sampled_from(LAYOUTS), data=st.data())
def test_any_layout_with_any_known_spelling_reads_back_the_same_events(n, seed, layout, data):
    x = physical_events(n, seed)
    spelled = [data.draw(st.sampled_from(sorted(ALIASES[name]))) for name in F.FEATURE_NAMES]
    order = data.draw(st.permutations(range(F.N_FEATURES)))
    with tempfile.TemporaryDirectory() as folder:
        path = _write(layout, Path(folder) / "e.h5", x, spelled, list(order))
        np.testing.assert_array_equal(read_events(path).features, x)
        assert validate_event_file(path) == []


@FAST
@given(n=st.integers(1, 30), seed=st.integers(0, 2**16), data=st.data(),
       bad=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_any_single_non_finite_value_is_reported_with_its_event_and_feature(n, seed, data, bad):
    x = physical_events(n, seed)
    row, column = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, F.N_FEATURES - 1))
    x[row, column] = bad
    with tempfile.TemporaryDirectory() as folder:
        problems = validate_event_file(write_objects(Path(folder) / "e.h5", x))
    assert [p.message for p in problems] == [f"NaN or infinity in {F.FEATURE_NAMES[column]} (1 of {n} events)"]
    assert problems[0].first_events == (row,)
