"""Every accepted input layout loads to the same arrays; unknown layouts are refused clearly."""

import h5py
import numpy as np
import pytest
from io_samples import physical_events, write_columns, write_matrix, write_objects, write_table

from gelato import features as F
from gelato.io import (
    EventBlock,
    EventFileError,
    count_events,
    event_layout,
    iter_event_blocks,
    iter_event_chunks,
    read_events,
    write_events,
)

N = 50


@pytest.fixture(scope="module")
def events():
    return physical_events(N, seed=11)


def _all_layouts(folder, x):
    """The same events in every accepted layout (plus weights and menu flags)."""
    w = np.linspace(0.5, 1.5, N).astype(np.float32)
    menu = np.arange(N) % 3 == 0
    extra = {"weight": w, "l1_menu_pass": menu}
    spelled = [name.replace("jFexSR_jet", "jet_") for name in F.FEATURE_NAMES]  # jet_0_pt: an alias
    shuffled = np.random.default_rng(0).permutation(F.N_FEATURES)
    return {
        "written": write_events(folder / "written.h5", x, w, menu_pass=menu),
        "matrix_no_names": write_matrix(folder / "plain.h5", x, names=None, **extra),
        "matrix_other_name": write_matrix(folder / "inputs.h5", x, dataset="inputs", **extra),
        "matrix_reordered": write_matrix(folder / "reordered.h5", x[:, shuffled],
                                         names=[F.FEATURE_NAMES[i] for i in shuffled], dataset="L1Inputs", **extra),
        "objects": write_objects(folder / "objects.h5", x, **extra),
        "objects_renamed": write_objects(folder / "objects2.h5", x, names={"jets": "jFexSR_jets", "MET": "l1_met"},
                                         **{"mcEventWeight": w, "menu_pass": menu}),
        "columns": write_columns(folder / "columns.h5", x, **extra),
        "columns_aliased_in_group": write_columns(folder / "columns2.h5", x, names=spelled, group="events", **extra),
        "float64_columns": write_columns(folder / "columns64.h5", x.astype(np.float64), **extra),
        "table": write_table(folder / "table.h5", x, names=spelled, nPV=np.arange(N), **extra),
    }


def test_every_layout_loads_to_identical_features_weights_and_menu_flags(tmp_path, events):
    reference = read_events(write_events(tmp_path / "ref.h5", events, np.linspace(0.5, 1.5, N)))
    for label, path in _all_layouts(tmp_path, events).items():
        sample = read_events(path)
        np.testing.assert_array_equal(sample.features, events, err_msg=label)
        np.testing.assert_array_equal(sample.weights, reference.weights, err_msg=label)
        np.testing.assert_array_equal(sample.menu_pass, np.arange(N) % 3 == 0, err_msg=label)
        assert sample.features.dtype == np.float32 and sample.weights.dtype == np.float64, label


def test_layout_descriptions_name_the_datasets_used(tmp_path, events):
    paths = _all_layouts(tmp_path, events)
    assert event_layout(paths["written"]).describe() == "features (matrix), weight, l1_menu_pass"
    assert event_layout(paths["objects"]).describe() == (
        "jets (objects), taus (objects), muons (objects), MET (objects), weight, l1_menu_pass")
    assert event_layout(paths["columns_aliased_in_group"]).describe() == (
        "44 per-feature datasets, events/weight, events/l1_menu_pass")
    assert event_layout(paths["table"]).describe() == "events (table), events[weight], events[l1_menu_pass]"


def test_a_mix_of_object_datasets_and_feature_columns_is_accepted(tmp_path, events):
    path = write_objects(tmp_path / "mix.h5", events)
    with h5py.File(path, "a") as f:
        del f["MET"]
        f["met"] = events[:, F.MET_OFFSET]  # alias of MET_pt
        f["MET_phi"] = events[:, F.MET_OFFSET + 1]
    np.testing.assert_array_equal(read_events(path).features, events)


def test_object_fields_attribute_may_reorder_the_last_axis(tmp_path, events):
    path = write_objects(tmp_path / "fields.h5", events)
    with h5py.File(path, "a") as f:
        jets = F.jets(events)[:, :, [2, 0, 1]]  # phi, pt, eta
        del f["jets"]
        f["jets"] = jets
        f["jets"].attrs["fields"] = ["phi", "et", "eta"]
    np.testing.assert_array_equal(read_events(path).features, events)


def test_file_without_menu_flag_or_weights_gets_none_and_unit_weights(tmp_path, events):
    sample = read_events(write_objects(tmp_path / "bare.h5", events))
    assert sample.menu_pass is None
    np.testing.assert_array_equal(sample.weights, np.ones(N))


def test_iter_event_blocks_and_the_old_tuple_api_agree_across_block_edges(tmp_path, events):
    path = write_columns(tmp_path / "c.h5", events, l1_menu_pass=np.arange(N) % 2)
    blocks = list(iter_event_blocks(path, chunk_events=16))
    assert all(isinstance(b, EventBlock) for b in blocks)
    assert [(b.start, b.stop) for b in blocks] == [(0, 16), (16, 32), (32, 48), (48, 50)]
    np.testing.assert_array_equal(np.concatenate([b.menu_pass for b in blocks]), np.arange(N) % 2 == 1)

    chunks = list(iter_event_chunks(path, chunk_events=16))
    assert [c[0] for c in chunks] == [0, 16, 32, 48] and all(len(c) == 3 for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks]), events)
    assert count_events(path) == N


def test_read_events_max_events_reads_the_first_events_of_any_layout(tmp_path, events):
    sample = read_events(write_objects(tmp_path / "o.h5", events, l1_menu_pass=np.ones(N, bool)), max_events=7)
    np.testing.assert_array_equal(sample.features, events[:7])
    assert sample.menu_pass.shape == (7,) and len(sample) == 7


def test_unknown_layout_lists_what_was_found_and_what_is_expected(tmp_path):
    path = tmp_path / "table.h5"
    with h5py.File(path, "w") as f:
        f["table"] = np.zeros((5, 10))
    with pytest.raises(EventFileError) as err:
        read_events(path)
    message = str(err.value)
    assert message.startswith(f"{path}: unknown layout: found table (5, 10) float64")
    assert "expected a dataset 'features' of shape (N, 44)" in message
    assert "jets (N, 6, 3), taus (N, 4, 3), muons (N, 4, 3) and MET (N, 2)" in message


def test_partial_layout_names_the_missing_features_and_unrecognised_names(tmp_path, events):
    names = list(F.FEATURE_NAMES)
    names[42] = "missingEt"  # not a known alias
    path = write_matrix(tmp_path / "m.h5", events, names=names)
    with pytest.raises(EventFileError, match=r"dataset 'features': missing 1 of 44 features: MET_pt; "
                                             r"unrecognised names: features\['missingEt'\]"):
        read_events(path)


def test_several_layout_problems_are_all_listed(tmp_path, events):
    path = write_objects(tmp_path / "o.h5", events, weight=np.ones(N - 1))
    with h5py.File(path, "a") as f:
        del f["taus"], f["muons"]
        f["taus"] = np.zeros((N, 3, 3))
    with pytest.raises(EventFileError) as err:
        read_events(path)
    lines = str(err.value).splitlines()
    assert lines[0] == f"{path}: 3 layout problems:"
    assert lines[1] == "  dataset 'taus': shape (50, 3, 3), expected (N, 4, 3) for taus"
    assert lines[2].startswith("  datasets 'jets, MET': missing 12 of 44 features: muon0_pt, muon0_eta, muon0_phi")
    assert lines[3] == ("  dataset 'weight': shape (49,), expected (50,) like jets: "
                        "every per-event dataset needs the same number of events")


def test_write_events_rejects_menu_flags_of_the_wrong_length(tmp_path, events):
    with pytest.raises(EventFileError, match=r"menu_pass must have shape \(50,\), got \(3,\)"):
        write_events(tmp_path / "x.h5", events, menu_pass=np.ones(3, bool))
    assert not (tmp_path / "x.h5").exists()


def test_datasets_behind_soft_and_external_links_load_once(tmp_path, events):
    write_matrix(tmp_path / "store.h5", events, dataset="run/features")
    with h5py.File(tmp_path / "linked.h5", "w") as f:
        f["features"] = h5py.ExternalLink("store.h5", "/run/features")
    np.testing.assert_array_equal(read_events(tmp_path / "linked.h5").features, events)

    path = write_matrix(tmp_path / "soft.h5", events, dataset="store/x")
    with h5py.File(path, "a") as f:
        f["features"] = h5py.SoftLink("/store/x")  # the same dataset under two names is not a duplicate
    np.testing.assert_array_equal(read_events(path).features, events)


def test_a_broken_link_is_named_with_its_target(tmp_path):
    with h5py.File(tmp_path / "dangling.h5", "w") as f:
        f["features"] = h5py.ExternalLink("gone.h5", "/features")
    with pytest.raises(EventFileError, match=r"dangling\.h5: dataset 'features': link to gone\.h5:/features cannot"):
        read_events(tmp_path / "dangling.h5")


def test_integer_and_half_precision_features_are_read_as_float32_values(tmp_path, events):
    counts = np.round(events * 4).astype(np.int32)  # e.g. pT in units of 0.25 GeV stored as integers
    path = write_matrix(tmp_path / "int.h5", counts)
    np.testing.assert_array_equal(read_events(path).features, counts.astype(np.float32))
    half = write_columns(tmp_path / "half.h5", events.astype(np.float16))
    np.testing.assert_array_equal(read_events(half).features, events.astype(np.float16).astype(np.float32))


def test_a_compound_table_with_a_repeated_feature_is_refused(tmp_path, events):
    names = [*F.FEATURE_NAMES[:-1], "met"]  # met is an alias of MET_pt: MET_pt twice, MET_phi missing
    path = write_table(tmp_path / "t.h5", events, names=names)
    with pytest.raises(EventFileError) as err:
        read_events(path)
    assert str(err.value).splitlines()[1:] == [
        "  dataset 'events': duplicate feature MET_pt: fields 'MET_pt' and 'met'",
        "  dataset 'events': missing 1 of 44 features: MET_phi; found events (50,) compound of 44 fields",
    ]


def test_a_compound_dataset_called_features_is_read_by_its_field_names(tmp_path, events):
    shuffled = list(reversed(F.FEATURE_NAMES))
    path = write_table(tmp_path / "t.h5", events[:, ::-1].copy(), names=shuffled, dataset="features")
    np.testing.assert_array_equal(read_events(path).features, events)

    bad = write_table(tmp_path / "u.h5", events, names=[f"v{i}" for i in range(F.N_FEATURES)], dataset="features")
    with pytest.raises(EventFileError, match=r"u\.h5: dataset 'features': compound dataset whose fields "
                                             r"\(v0, v1, v2, v3, v4 \.\.\. and 39 more\) name no feature"):
        read_events(bad)


def test_block_size_must_be_positive(tmp_path, events):
    path = write_events(tmp_path / "e.h5", events)
    with pytest.raises(ValueError, match="chunk_events must be >= 1, got 0"):
        next(iter_event_blocks(path, chunk_events=0))


def test_readers_warn_once_per_file_about_non_finite_values(tmp_path, events, caplog):
    x = events.copy()
    x[[3, 30], 5] = np.nan
    path = write_events(tmp_path / "nan.h5", x)
    with caplog.at_level("WARNING", logger="gelato.io"):
        read_events(path)
        list(iter_event_blocks(path, chunk_events=8))
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: NaN or infinite values among events 0-49; run `gelato validate {path}` for the list",
        f"{path}: NaN or infinite values among events 0-7; run `gelato validate {path}` for the list",
    ]


def test_per_feature_layout_names_an_unrecognised_dataset_before_the_found_list(tmp_path, events):
    spelled = list(F.FEATURE_NAMES)
    spelled[37] = "foo_bar"  # muon2_eta under a name no mapping knows
    path = write_columns(tmp_path / "c.h5", events, names=spelled)
    with pytest.raises(EventFileError, match=r"dataset 'muon2_eta': missing 1 of 44 features: muon2_eta; "
                                             r"unrecognised names: foo_bar; found "):
        read_events(path)
