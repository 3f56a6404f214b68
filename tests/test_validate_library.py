"""The validation library: Problem records, block-wise reading, real samples, and the calibrate hook."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
from io_samples import physical_events, write_columns, write_matrix, write_objects

from gelato import features as F
from gelato.cli import main
from gelato.io import EventFileError, write_events
from gelato.validation import Problem, check_event_file, require_valid, validate_event_file

REPO = Path(__file__).resolve().parents[1]
COMMITTED = sorted((REPO / "data" / "samples").glob("*.h5"))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_samples_validate_clean(path):
    report = check_event_file(path)
    assert report.problems == []
    assert report.n_events > 0


def test_committed_samples_exist_to_be_checked():
    assert COMMITTED, "no real samples found: the clean-validation test above checked nothing"


def test_valid_events_in_every_layout_have_no_problems(tmp_path):
    x = physical_events(200, seed=4)
    menu = np.zeros(200, np.int8)
    for path in (write_events(tmp_path / "a.h5", x, np.ones(200), menu_pass=menu.astype(bool)),
                 write_objects(tmp_path / "b.h5", x, l1_menu_pass=menu),
                 write_columns(tmp_path / "c.h5", x, names=[n.replace("muon", "mu") for n in F.FEATURE_NAMES])):
        assert validate_event_file(path) == [], path


def test_problem_record_names_file_dataset_message_and_first_events(tmp_path):
    x = physical_events(30, seed=3)
    x[[4, 17], F.feature_index("jFexSR_jet3_pt")] = np.nan
    path = write_columns(tmp_path / "c.h5", x, names=[n.replace("jFexSR_jet", "j") for n in F.FEATURE_NAMES])
    assert validate_event_file(path) == [
        Problem(str(path), "j3_pt", "NaN or infinity in jFexSR_jet3_pt (2 of 30 events)", (4, 17))
    ]
    assert str(validate_event_file(path)[0]) == (
        f"{path}: j3_pt: NaN or infinity in jFexSR_jet3_pt (2 of 30 events); first events 4, 17")


def test_offending_events_are_counted_across_blocks_and_at_most_five_are_shown(tmp_path):
    x = physical_events(40, seed=8)
    bad = [2, 9, 15, 16, 30, 33, 39]
    x[bad, F.MET_OFFSET] = -1.0
    path = write_events(tmp_path / "m.h5", x)
    expected = [Problem(str(path), "features", "negative pT (MET) in MET_pt (7 of 40 events)", (2, 9, 15, 16, 30),
                        physical=True)]
    for chunk_events in (1, 7, 16, 65536):
        assert check_event_file(path, chunk_events=chunk_events).problems == expected, chunk_events


def test_phi_of_float32_pi_passes_and_the_next_float32_fails(tmp_path):
    x = physical_events(10, seed=9)
    x[0, F.MET_OFFSET + 1] = np.float32(np.pi)
    x[1, F.MET_OFFSET + 1] = -np.float32(np.pi)
    assert validate_event_file(write_events(tmp_path / "ok.h5", x)) == []
    x[2, F.MET_OFFSET + 1] = np.nextafter(np.float32(np.pi), np.float32(4))
    (problem,) = validate_event_file(write_events(tmp_path / "bad.h5", x))
    assert problem.message == "|phi| > pi (MET) in MET_phi (1 of 10 events)" and problem.first_events == (2,)


def test_validate_with_a_names_file_accepts_its_spellings(tmp_path, capsys):
    x = physical_events(12, seed=1)
    spelled = [f"c{i}" for i in range(F.N_FEATURES)]
    path = write_matrix(tmp_path / "own.h5", x, names=spelled, dataset="calo")
    names = tmp_path / "names.yaml"
    names.write_text("".join(f"{canonical}: [{alias}]\n" for canonical, alias in zip(F.FEATURE_NAMES, spelled)))
    assert main(["validate", str(path)]) == 1
    assert main(["validate", "--names", str(names), str(path)]) == 0
    assert f"OK {path}: 12 events (calo (matrix))" in capsys.readouterr().out


def test_a_malformed_names_file_is_a_usage_error_with_exit_2(tmp_path, capsys):
    path = write_events(tmp_path / "a.h5", physical_events(5))
    names = tmp_path / "names.yaml"
    names.write_text("jets_pt: [x]\n")
    assert main(["validate", "--names", str(names), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gelato validate: error: {names}: top level: 'jets_pt' is not one of")
    assert main(["validate", "--names", str(tmp_path / "none.yaml"), str(path)]) == 2


def test_validation_never_modifies_its_inputs(tmp_path):
    x = physical_events(50, seed=2)
    x[3, 0] = np.inf
    paths = [write_events(tmp_path / "a.h5", x), write_objects(tmp_path / "b.h5", x)]
    before = [(hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in paths]
    assert main(["validate", *map(str, paths)]) == 1
    assert [(hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in paths] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.h5"]


def test_require_valid_returns_event_counts_or_raises_listing_every_problem(tmp_path):
    good = write_events(tmp_path / "good.h5", physical_events(25))
    assert require_valid([good]) == {good: 25}
    x = physical_events(25)
    x[0, 0] = -5.0
    bad = write_events(tmp_path / "bad.h5", x)
    with pytest.raises(EventFileError) as err:
        require_valid([good, bad, tmp_path / "gone.h5"])
    assert str(err.value).splitlines() == [
        "2 problem(s) in the input files (run `gelato validate` on them):",
        f"  {bad}: features: negative pT (jets) in jFexSR_jet0 (1 of 25 events); first events 0",
        f"  {tmp_path / 'gone.h5'}: (file): no such file",
    ]


def test_require_valid_can_let_physical_range_problems_through_but_never_non_finite_values(tmp_path, caplog):
    x = physical_events(25)
    x[0, 0], x[3, 2] = -5.0, 4.0  # negative pT, |phi| > pi: the firmware's edge cases
    unphysical = write_events(tmp_path / "edges.h5", x)
    assert require_valid([unphysical], physical=False) == {unphysical: 25}
    assert "2 physical-range problem(s) let through" in caplog.text
    x[7, 5] = np.nan
    broken = write_events(tmp_path / "nan.h5", x)
    with pytest.raises(EventFileError) as err:
        require_valid([broken], physical=False)
    assert str(err.value).splitlines()[1:] == [
        f"  {broken}: features: NaN or infinity in jFexSR_jet1_phi (1 of 25 events); first events 7"]



def test_problem_order_does_not_depend_on_the_block_size(tmp_path):
    x = physical_events(30, seed=12)
    x[25, 0] = np.nan  # NaN appears late ...
    x[2, F.MET_OFFSET] = -1.0  # ... negative MET early
    path = write_events(tmp_path / "m.h5", x)
    reports = [check_event_file(path, chunk_events=chunk_events) for chunk_events in (4, 64)]
    orders = {tuple(problem.message.split(" in ")[0] for problem in report.problems) for report in reports}
    assert orders == {("NaN or infinity", "negative pT (MET)")}
