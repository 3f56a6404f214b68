"""The emulated baseline L1 menu on constructed events, and the calibration config."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from gelato import features as F
from gelato.calibration.config import DEFAULT_CONFIG, CalibrationConfigError, load_settings, settings_from_dict
from gelato.calibration.menu import Menu, MenuItem


def event(jets=(), taus=(), muons=(), met=0.0) -> np.ndarray:
    """One event (1, 44) from (pt, eta) pairs; phi is 0."""
    x = np.zeros((1, F.N_FEATURES), np.float32)
    for block, objs in ((F.jets(x), jets), (F.taus(x), taus), (F.muons(x), muons)):
        for i, (pt, eta) in enumerate(objs):
            block[0, i, :2] = pt, eta
    F.met(x)[0, 0] = met
    return x


def test_single_jet_item_uses_pt_threshold_inclusively_and_eta_window():
    item = MenuItem("L1_J100", "jet", 100.0, eta_max=3.2)
    assert item.fires(event(jets=[(100.0, 0.0)]))[0]
    assert not item.fires(event(jets=[(99.75, 0.0)]))[0]
    assert not item.fires(event(jets=[(150.0, 3.2)]))[0]  # |eta| < 3.2 is required
    assert item.fires(event(jets=[(150.0, -3.1)]))[0]


def test_multi_object_item_counts_objects_above_threshold():
    item = MenuItem("L1_4J15", "jet", 15.0, count=4, eta_max=2.5)
    assert item.fires(event(jets=[(40, 0), (30, 1), (20, -1), (15, 2)]))[0]
    assert not item.fires(event(jets=[(40, 0), (30, 1), (20, -1), (14, 2)]))[0]
    assert not item.fires(event(jets=[(40, 0), (30, 1), (20, -1), (16, 2.6)]))[0]


def test_zero_padded_objects_never_count_even_with_zero_threshold():
    item = MenuItem("L1_2MU0", "muon", 0.0, count=2)
    assert not item.fires(event(muons=[(5, 0)]))[0]
    assert item.fires(event(muons=[(5, 0), (3, 1)]))[0]


def test_endcap_window_with_eta_min():
    item = MenuItem("L1_MU8_EC", "muon", 8.0, eta_min=1.05, eta_max=2.4)
    assert item.fires(event(muons=[(10, -1.05)]))[0]
    assert not item.fires(event(muons=[(10, 1.0)]))[0]


def test_met_item_and_menu_or():
    menu = Menu((MenuItem("L1_XE55", "met", 55.0), MenuItem("L1_TAU60", "tau", 60.0, eta_max=2.5)))
    events = np.concatenate([event(met=55.0), event(met=54.0), event(taus=[(61, 1.0)]), event()])
    np.testing.assert_array_equal(menu.item_decisions(events), [[True, False], [False, False], [False, True], [False, False]])
    np.testing.assert_array_equal(menu.accepts(events), [True, False, True, False])


def test_default_config_loads_with_the_documented_settings():
    s = load_settings()
    assert s.reference_process == "zerobias"
    assert s.processes == ("jz1", "jz2", "jz4", "ttbar_1lep", "ttbar_2lep", "ZZ4lep")
    assert s.rates_hz == (500, 1000, 2000, 3000, 4000, 5000)
    assert s.bunch_crossing_hz == 2544 * 11245.5
    assert s.menu.use_file_decision
    assert {"jet", "tau", "muon", "met"} == {item.obj for item in s.menu.items}


def test_config_error_names_the_bad_key():
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["bunch_crossing"]["colliding_bunches"] = 4000
    with pytest.raises(CalibrationConfigError, match="bunch_crossing/colliding_bunches"):
        settings_from_dict(data)
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["menu"]["items"][0]["object"] = "electron"
    with pytest.raises(CalibrationConfigError, match="menu/items/0/object"):
        settings_from_dict(data)


def test_unknown_plot_feature_is_rejected():
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["plots"] = {"efficiency_features": ["jet7_pt"]}
    with pytest.raises(CalibrationConfigError, match="jet7_pt"):
        settings_from_dict(data)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(CalibrationConfigError, match="nope.yaml"):
        load_settings(tmp_path / "nope.yaml")
