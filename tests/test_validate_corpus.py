"""`gelato validate` on a corpus of malformed files: exact exit status and one line per problem.

Each case writes one file (or none) and lists the problem lines expected after the
``FILE: `` prefix.  A line ending in ``...`` is a prefix (its tail quotes h5py or lists
every dataset); every other line must match exactly.
"""

import h5py
import numpy as np
import pytest
from io_samples import physical_events, write_columns, write_matrix, write_objects, write_table

from gelato import features as F
from gelato.cli import main
from gelato.io import write_events

N = 40
JET1_PHI = F.feature_index("jFexSR_jet1_phi")


def _events(column: int | None = None, rows: tuple[int, ...] = (), value: float = 0.0) -> np.ndarray:
    x = physical_events(N, seed=21)
    if column is not None:
        x[list(rows), column] = value
    return x


def _edit(path, name, data=None, row=None, value=None):
    """Replace dataset ``name`` by ``data``, or set ``name[row] = value``."""
    with h5py.File(path, "a") as f:
        if data is not None:
            if name in f:
                del f[name]
            f[name] = data
        else:
            f[name][row] = value


def _truncated(path):
    write_events(path, physical_events(3000, seed=1))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_chunk(path):
    """A complete HDF5 file whose compressed feature data is overwritten in the middle."""
    write_events(path, physical_events(20000, seed=2))
    with h5py.File(path, "r") as f:
        offset = f["features"].id.get_chunk_info(1).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 100 : offset + 4000] = bytes(3900)
    path.write_bytes(bytes(data))


def _nan_inf(path):
    write_events(path, _events(JET1_PHI, (3, 7), np.nan))
    _edit(path, "features", row=(9, F.MET_OFFSET), value=np.inf)


def _disordered_taus(path):
    x = _events()
    taus = F.taus(x)  # a view into x
    taus[[3, 8]] = 0.0
    taus[[3, 8], 0, :] = (5.0, 0.1, 0.1)
    taus[[3, 8], 1, :] = (9.0, 0.2, 0.2)  # above the leading tau
    write_events(path, x)


def _unpadded_muons(path):
    x = _events()
    muons = F.muons(x)
    muons[[4, 6]] = 0.0
    muons[4, 0, 1] = 0.7  # zero pT, non-zero eta
    muons[6, 2, :] = (4.0, 0.1, 0.1)  # a muon after a zero-pT one
    write_events(path, x)


def _bad_weights(path):
    write_events(path, _events(), np.where(np.arange(N) % 10 == 0, -1.0, 1.0))
    _edit(path, "weight", row=5, value=np.nan)


CASES = {
    "missing.h5": (None, ["(file): no such file"]),
    "empty.h5": (lambda p: p.write_bytes(b""), ["(file): empty file (0 bytes), expected an HDF5 event file"]),
    "text.h5": (lambda p: p.write_text("pt,eta,phi\n1,2,3\n"),
                ["(file): not a readable HDF5 file (no HDF5 signature); expected an HDF5 event file"]),
    "truncated.h5": (_truncated, ["(file): truncated HDF5 file (Unable to synchronously open file (truncated file..."]),
    "corrupt_chunk.h5": (_corrupt_chunk, ["features: reading events 0-19999 failed (..."]),
    "no_datasets.h5": (lambda p: h5py.File(p, "w").close(),
                       ["(file): unknown layout: found no datasets; expected a dataset 'features' of shape..."]),
    "unknown.h5": (lambda p: write_matrix(p, np.zeros((N, 10)), names=None, dataset="table"),
                   ["(file): unknown layout: found table (40, 10) float64; expected a dataset 'features'..."]),
    "null_dataspace.h5": (lambda p: _edit(write_events(p, _events()), "features", h5py.Empty("f4")),
                          ["features: holds no values (null dataspace); expected (N, 44)"]),
    "zero_events.h5": (lambda p: write_events(p, np.zeros((0, 44), np.float32)),
                       ["features: holds no events (N = 0); expected at least one event"]),
    "missing_feature.h5": (lambda p: write_columns(p, _events(), skip=("MET_phi",)),
                           ["MET_phi: missing 1 of 44 features: MET_phi; found MET_pt (40,) float32..."]),
    "duplicate_column.h5": (
        lambda p: write_matrix(p, np.hstack([_events(), _events()[:, :1]]), names=[*F.FEATURE_NAMES, "j0pt"]),
        ["features: duplicate feature jFexSR_jet0_pt: columns 0 ('jFexSR_jet0_pt') and 44 ('j0pt')"]),
    "duplicate_dataset.h5": (lambda p: write_matrix(p, _events(), jet_pt_0=_events()[:, 0]),
                             ["features, jet_pt_0: duplicate feature jFexSR_jet0_pt: "
                              "provided by features and jet_pt_0"]),
    "wrong_shape.h5": (lambda p: write_matrix(p, _events()[:, :43], names=None),
                       ["features: shape (40, 43), expected (N, 44) "
                        "or a 'feature_names' attribute naming its columns"]),
    "wrong_object_shape.h5": (lambda p: write_objects(p, _events()) and _edit(p, "jets", np.zeros((N, 5, 3))),
                              ["jets: shape (40, 5, 3), expected (N, 6, 3) for jets"]),
    "wrong_dtype.h5": (lambda p: write_columns(p, _events(), skip=("MET_pt",), MET_pt=np.array([b"x"] * N)),
                       ["MET_pt: dtype |S1, expected floating point (float32) features"]),
    "menu_dtype.h5": (lambda p: write_events(p, _events()) and _edit(p, "l1_menu_pass", np.zeros(N, np.float32)),
                      ["l1_menu_pass: dtype float32, expected per-event L1 menu decisions (bool or 0/1 int)"]),
    "weight_length.h5": (lambda p: write_events(p, _events()) and _edit(p, "weight", np.ones(N + 1)),
                         ["weight: shape (41,), expected (40,) like features: "
                          "every per-event dataset needs the same number of events"]),
    "nan_inf.h5": (_nan_inf, ["features: NaN or infinity in jFexSR_jet1_phi, MET_pt (3 of 40 events); "
                              "first events 3, 7, 9"]),
    "negative_pt.h5": (lambda p: write_objects(p, _events(F.JET_OFFSET, (2, 5), -10.0)),
                       ["jets: negative pT (jets) in jFexSR_jet0 (2 of 40 events); first events 2, 5"]),
    "phi_range.h5": (lambda p: write_objects(p, _events(F.MET_OFFSET + 1, (1,), 3.2)),
                     ["MET: |phi| > pi (MET) in MET_phi (1 of 40 events); first events 1"]),
    "unordered.h5": (_disordered_taus, ["features: taus not pT-ordered: pT above the previous object's in eFex_tau1 "
                                        "(2 of 40 events); first events 3, 8"]),
    "unpadded.h5": (_unpadded_muons, [
        "features: muons not zero-padded: zero-pT object with non-zero eta or phi in muon0 (1 of 40 events); "
        "first events 4",
        "features: muons not zero-padded: non-zero object after a zero-pT one in muon2 (1 of 40 events); "
        "first events 6"]),
    "bad_weights.h5": (_bad_weights, ["weight: NaN or infinite weight in weight (1 of 40 events); first events 5",
                                      "weight: negative weight in weight (4 of 40 events); "
                                      "first events 0, 10, 20, 30"]),
    "table_values.h5": (lambda p: write_table(p, _events(F.MET_OFFSET, (8,), np.nan), weight=-np.ones(N)), [
        "events: NaN or infinity in MET_pt (1 of 40 events); first events 8",
        "events: negative weight in weight (40 of 40 events); first events 0, 1, 2, 3, 4"]),
    "menu_values.h5": (lambda p: write_events(p, _events()) and _edit(p, "l1_menu_pass", np.arange(N) % 3),
                       ["l1_menu_pass: menu decision not 0 or 1 in l1_menu_pass (13 of 40 events); "
                        "first events 2, 5, 8, 11, 14"]),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    for name, (build, _) in CASES.items():
        if build is not None:
            build(folder / name)
    return folder


def _assert_lines(lines, path, expected):
    assert len(lines) == len(expected), "\n".join(lines)
    for line, want in zip(lines, expected):
        want = f"{path}: {want}"
        if want.endswith("..."):
            assert line.startswith(want[:-3]), line
        else:
            assert line == want


@pytest.mark.parametrize("name", list(CASES))
def test_each_malformed_file_exits_1_with_one_line_per_problem(corpus, capsys, name):
    path = corpus / name
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "1 file(s) checked: 0 valid, 1 with %d problem(s)" % len(CASES[name][1])
    _assert_lines(out[:-1], path, CASES[name][1])


def test_valid_file_exits_0_with_an_ok_line_and_event_count(tmp_path, capsys):
    path = write_events(tmp_path / "good.h5", _events(), np.ones(N), menu_pass=np.zeros(N, bool))
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"OK {path}: 40 events (features (matrix), weight, l1_menu_pass)",
        "1 file(s) checked: 1 valid, 0 with 0 problem(s)",
    ]


def test_one_bad_file_among_good_ones_makes_the_exit_status_1(tmp_path, corpus, capsys):
    good = write_objects(tmp_path / "good.h5", _events())
    assert main(["validate", str(good), str(corpus / "negative_pt.h5"), str(good)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[0] for line in out[:3]] == ["OK", f"{corpus / 'negative_pt.h5'}:", "OK"]
    assert out[-1] == "3 file(s) checked: 2 valid, 1 with 1 problem(s)"


def test_a_folder_stands_for_its_h5_files_and_an_empty_folder_is_a_problem(tmp_path, capsys):
    write_columns(tmp_path / "a.h5", _events())
    (tmp_path / "notes.txt").write_text("not an event file")
    (tmp_path / "empty").mkdir()
    assert main(["validate", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"OK {tmp_path / 'a.h5'}: 40 events (44 per-feature datasets)"
    assert main(["validate", str(tmp_path / "empty")]) == 1
    assert capsys.readouterr().out.splitlines()[0] == f"{tmp_path / 'empty'}: (file): folder holds no *.h5 files"


def test_the_cli_never_prints_a_traceback_for_the_whole_corpus(corpus):
    import subprocess
    import sys

    paths = [str(corpus / name) for name in CASES]
    run = subprocess.run([sys.executable, "-m", "gelato.cli", "validate", *paths], capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    n_problems = sum(len(lines) for _, lines in CASES.values())
    summary = f"{len(CASES)} file(s) checked: 0 valid, {len(CASES)} with {n_problems} problem(s)"
    assert run.stdout.splitlines()[-1] == summary
    for path in paths:  # every file is named on at least one problem line
        assert any(line.startswith(f"{path}: ") for line in run.stdout.splitlines()), path
