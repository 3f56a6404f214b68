"""The ``gelato generate`` command line: option checking and error messages."""

from __future__ import annotations

import argparse

import pytest

from gelato.cli import GelatoError, main
from gelato.samples.commands import DEFAULT_EVENTS, _event_counts


def parse(**overrides) -> argparse.Namespace:
    return argparse.Namespace(**{"processes": None, "events": None, "per_process": None, **overrides})


def test_unknown_process_exits_2_naming_it_and_the_known_ones(tmp_path, capsys):
    code = main(["generate", "--processes", "jz1,jz9", "--out", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == 2
    assert "unknown process 'jz9'" in err and "zerobias" in err and "ZZ4lep" in err
    assert not any(tmp_path.iterdir())


def test_default_counts_cover_all_seven_processes_with_many_zero_bias_events():
    counts = _event_counts(parse())

    assert set(counts) == {"zerobias", "jz1", "jz2", "jz4", "ttbar_1lep", "ttbar_2lep", "ZZ4lep"}
    assert counts["zerobias"] >= 100000 and min(counts.values()) >= 15000
    assert counts == DEFAULT_EVENTS


def test_events_and_per_process_counts_override_the_defaults():
    counts = _event_counts(parse(processes="jz1, ZZ4lep", events=500, per_process=["ZZ4lep=20"]))

    assert counts == {"jz1": 500, "ZZ4lep": 20}


def test_malformed_per_process_count_is_refused():
    with pytest.raises(GelatoError, match="NAME=N"):
        _event_counts(parse(processes="jz1", per_process=["jz2=10"]))
