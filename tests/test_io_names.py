"""The name mapping: packaged aliases, user files merged on top, malformed files refused by key."""

import numpy as np
import pytest
from io_samples import physical_events, write_columns, write_matrix

from gelato import features as F
from gelato.io import EventFileError, read_events
from gelato.layouts import LayoutError, load_name_mapping


def test_packaged_mapping_knows_the_common_spellings_case_insensitively():
    names = load_name_mapping()
    for alias in ("jFexSR_jet0_pt", "jet_pt_0", "j0pt", "jet0_pt", "JET_0_PT", "L1_jet0_pt"):
        assert names.feature(alias) == "jFexSR_jet0_pt", alias
    assert names.feature("mu_eta_3") == "muon3_eta" and names.feature("t2phi") == "eFex_tau2_phi"
    assert names.feature("met") == "MET_pt" and names.feature("met_phi") == "MET_phi"
    assert names.role("jFexSR_jets") == "jets" and names.role("mcEventWeight") == "weight"
    assert names.role("menu_pass") == "l1_menu_pass" and names.feature("pileup_mu") is None


def test_packaged_mapping_covers_all_44_features_with_aliases():
    names = load_name_mapping()
    aliased = {canonical for alias, canonical in names.features.items() if alias != canonical.lower()}
    assert aliased == set(F.FEATURE_NAMES)


def test_user_mapping_file_adds_spellings_for_the_loader(tmp_path):
    x = physical_events(20, seed=5)
    spelled = [f"L1Calo_{i:02d}" for i in range(F.N_FEATURES)]
    path = write_columns(tmp_path / "own.h5", x, names=spelled)
    mapping = tmp_path / "names.yaml"
    mapping.write_text("".join(f"{canonical}: [{alias}]\n" for canonical, alias in zip(F.FEATURE_NAMES, spelled)))

    with pytest.raises(EventFileError, match="unknown layout: found L1Calo_00"):
        read_events(path)
    np.testing.assert_array_equal(read_events(path, names=mapping).features, x)


def test_user_mapping_may_rename_datasets_and_matrix_columns(tmp_path):
    x = physical_events(10, seed=6)
    names = list(F.FEATURE_NAMES)
    names[0] = "LeadingJetET"
    path = write_matrix(tmp_path / "m.h5", x, names=names, dataset="l1calo", evtw=np.full(10, 2.0))
    mapping = tmp_path / "names.yaml"
    mapping.write_text("jFexSR_jet0_pt: [LeadingJetET]\nweight: [evtw]\n")
    sample = read_events(path, names=mapping)
    np.testing.assert_array_equal(sample.features, x)
    np.testing.assert_array_equal(sample.weights, np.full(10, 2.0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jet0_pt: [a]\n", r"names\.yaml: top level: 'jet0_pt' is not one of"),
        ("jFexSR_jet0_pt: j0\n", r"names\.yaml: jFexSR_jet0_pt: 'j0' is not of type 'array'"),
        ("jFexSR_jet0_pt: [a, a]\n", r"names\.yaml: jFexSR_jet0_pt: .*non-unique"),
        ("jFexSR_jet0_pt: [group/a]\n", r"names\.yaml: jFexSR_jet0_pt/0: 'group/a' does not match"),
        ("MET_pt: [jFexSR_jet0_pt]\n", r"alias 'jFexSR_jet0_pt' of 'MET_pt' is already a name of 'jFexSR_jet0_pt'"),
        ("MET_pt: [x1]\nMET_phi: [X1]\n", r"alias 'X1' of 'MET_phi' is already a name of 'MET_pt'"),
        ("a: [b\n", r"names\.yaml: not valid YAML"),
    ],
)
def test_malformed_mapping_file_is_refused_naming_the_key(tmp_path, text, message):
    path = tmp_path / "names.yaml"
    path.write_text(text)
    with pytest.raises(LayoutError, match=message):
        load_name_mapping(path)


def test_user_alias_overrides_a_packaged_one(tmp_path):
    path = tmp_path / "names.yaml"
    path.write_text("jFexSR_jet1_pt: [j0pt]\n")
    assert load_name_mapping(path).feature("j0pt") == "jFexSR_jet1_pt"
    assert load_name_mapping().feature("j0pt") == "jFexSR_jet0_pt"


def test_missing_mapping_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml: name-mapping file not found"):
        load_name_mapping(tmp_path / "nope.yaml")


def test_a_nameless_matrix_under_another_name_is_accepted_once_aliased_to_features(tmp_path):
    x = physical_events(8, seed=7)
    path = write_matrix(tmp_path / "ml.h5", x, names=None, dataset="X")
    with pytest.raises(EventFileError, match="unknown layout: found X \\(8, 44\\) float32"):
        read_events(path)
    mapping = tmp_path / "names.yaml"
    mapping.write_text("features: [X]\n")
    np.testing.assert_array_equal(read_events(path, names=mapping).features, x)
