"""The shared feature contract and the event-file layout."""

import h5py
import numpy as np
import pytest

from gelato import features as F
from gelato.io import EventFileError, atomic_output, iter_event_chunks, read_events, write_events


def test_feature_order_follows_the_seed_table():
    assert F.FEATURE_NAMES[:3] == ("jFexSR_jet0_pt", "jFexSR_jet0_eta", "jFexSR_jet0_phi")
    assert F.FEATURE_NAMES[18] == "eFex_tau0_pt"
    assert F.FEATURE_NAMES[30] == "muon0_pt"
    assert F.FEATURE_NAMES[-2:] == ("MET_pt", "MET_phi")
    assert len(set(F.FEATURE_NAMES)) == 44


def test_seed_shifts_match_table_2_of_the_paper():
    shifts = dict(zip(F.FEATURE_NAMES, F.SEED_SHIFTS))
    assert shifts["jFexSR_jet0_pt"] == 7 and shifts["jFexSR_jet5_phi"] == 2
    assert shifts["eFex_tau1_phi"] == 5 and shifts["eFex_tau3_eta"] == 2
    assert (shifts["muon3_pt"], shifts["muon3_eta"], shifts["muon3_phi"]) == (-2, -1, -1)
    assert (shifts["MET_pt"], shifts["MET_phi"]) == (6, 5)


def test_object_views_and_derived_quantities():
    x = np.zeros((2, 44), dtype=np.float32)
    x[0, 0:3] = (100.0, 0.5, 0.0)
    x[0, 3:6] = (50.0, -0.5, np.pi)
    x[1, 0:3] = (30.0, 1.0, 1.0)
    assert F.jets(x).shape == (2, 6, 3) and F.muons(x).shape == (2, 4, 3)
    np.testing.assert_array_equal(F.jet_multiplicity(x), [2, 1])
    m = F.dijet_mass(x)
    expected = np.sqrt(2 * 100 * 50 * (np.cosh(1.0) - np.cos(np.pi)))
    assert m[0] == pytest.approx(expected, rel=1e-6) and m[1] == 0.0


def test_unknown_feature_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="jFexSR_jet0_pt"):
        F.feature_index("jet_pt_0")


def test_event_file_round_trip_keeps_values_weights_and_attributes(tmp_path):
    x = np.random.default_rng(3).normal(size=(100, 44)).astype(np.float32)
    w = np.linspace(0.5, 2.0, 100)
    path = write_events(tmp_path / "s.h5", x, w, attrs={"process": "zerobias", "generator": {"seed": 1}})
    sample = read_events(path)
    np.testing.assert_array_equal(sample.features, x)
    np.testing.assert_array_equal(sample.weights, w.astype(np.float32))
    assert sample.process == "zerobias" and sample.attrs["generator"] == '{"seed": 1}'
    chunks = list(iter_event_chunks(path, chunk_events=30))
    assert [c[0] for c in chunks] == [0, 30, 60, 90]
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks]), x)


def test_reading_a_file_without_features_names_what_was_found(tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f["jets"] = np.zeros((3, 6, 3))
    with pytest.raises(EventFileError, match=r"bad\.h5: dataset 'jets': missing 26 of 44 features.*found jets \(3, 6, 3\)"):
        read_events(path)


def test_reading_a_missing_or_non_hdf5_file_is_a_clear_error(tmp_path):
    with pytest.raises(EventFileError, match="no such file"):
        read_events(tmp_path / "nope.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(EventFileError, match="not a readable HDF5 file"):
        read_events(tmp_path / "text.h5")


def test_atomic_output_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_output_gives_the_finished_file_the_umask_mode_not_mkstemps_0600(tmp_path):
    import os

    previous = os.umask(0o027)
    try:
        with atomic_output(tmp_path / "report.md") as tmp:
            tmp.write_text("done")
    finally:
        os.umask(previous)
    assert (tmp_path / "report.md").stat().st_mode & 0o777 == 0o640


def test_atomic_output_moves_nothing_into_place_once_an_interrupt_was_flagged(tmp_path):
    from gelato.io import INTERRUPTED

    target = tmp_path / "plot.png"
    INTERRUPTED.set()  # as the CLI's SIGINT handler does, even when the KeyboardInterrupt itself was swallowed
    try:
        with pytest.raises(KeyboardInterrupt):
            with atomic_output(target) as tmp:
                tmp.write_text("drawn after the interrupt")
    finally:
        INTERRUPTED.clear()
    assert list(tmp_path.iterdir()) == []


def test_cli_exits_130_when_an_interrupt_was_swallowed_during_the_command(monkeypatch, capsys):
    import argparse
    import signal

    from gelato import cli
    from gelato.io import INTERRUPTED

    def swallowing_command(args: argparse.Namespace) -> int:
        # What Python does on Ctrl-C: call the installed SIGINT handler (called directly here, since a real
        # signal may be taken by another thread of a test worker and handled after the command has ended).
        try:
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # the CLI's handler raises KeyboardInterrupt ...
        except KeyboardInterrupt:
            pass  # ... and a library callback drops it
        return 0

    parser = argparse.ArgumentParser()
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.set_defaults(func=swallowing_command, command="fake")
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main([]) == 130
    assert "interrupted; no partial output was kept" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is not cli._on_interrupt
    assert not INTERRUPTED.is_set()  # later commands and outputs in this process are not refused



def test_display_path_is_relative_below_the_working_directory(tmp_path, monkeypatch):
    from gelato.io import display_path

    monkeypatch.chdir(tmp_path)
    assert display_path(tmp_path / "configs" / "calibration.yaml") == "configs/calibration.yaml"
    assert display_path("/elsewhere/x.yaml") == "/elsewhere/x.yaml"
