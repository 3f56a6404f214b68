"""Settings of `gelato calibrate`: the YAML file, its JSON schema, and typed access (calibration stage).

The defaults live in ``configs/calibration.yaml``; the schema beside it
(``configs/calibration.schema.json``) is checked with :mod:`jsonschema` before any work
starts, so a typo fails in a second with the key's path, not after twenty minutes.
Feature names in the ``plots`` block are checked against :mod:`.efficiency`'s variables.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

from gelato import PROJECT_ROOT
from gelato.calibration.menu import Menu
from gelato.calibration.rates import bunch_crossing_rate_hz

log = logging.getLogger(__name__)

DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "calibration.yaml"
SCHEMA_PATH = PROJECT_ROOT / "configs" / "calibration.schema.json"


class CalibrationConfigError(ValueError):
    """The calibration YAML is missing, unparsable or does not match its schema."""


@dataclass(frozen=True)
class CalibrationSettings:
    """Validated calibration settings (see ``configs/calibration.yaml`` for their meaning)."""

    reference_process: str
    processes: tuple[str, ...]
    rates_hz: tuple[int, ...]
    colliding_bunches: int
    revolution_frequency_hz: float
    menu: Menu
    min_passing_events: int = 10
    chunk_events: int = 65536
    csim_events: int = 10000
    threshold_tail_events: int = 1024
    score_file_features: str = "processes"
    efficiency_plot_features: tuple[str, ...] = ("jet0_pt", "jet1_pt", "MET_pt", "n_jets", "mjj")
    extra_efficiency_plot_features: dict[str, tuple[str, ...]] = field(default_factory=dict)
    score_vs_features: tuple[str, ...] = ("jet0_pt", "jet1_pt", "MET_pt", "n_jets", "mjj")
    source: str = ""

    @property
    def bunch_crossing_hz(self) -> float:
        """Colliding-bunch-crossing rate [Hz]."""
        return bunch_crossing_rate_hz(self.colliding_bunches, self.revolution_frequency_hz)

    def keeps_features(self, process: str) -> bool:
        """Whether the score file of ``process`` stores the features (see ``score_file_features``)."""
        return self.score_file_features == "all" or process != self.reference_process

    @property
    def all_processes(self) -> tuple[str, ...]:
        """The reference process followed by the efficiency processes."""
        return (self.reference_process, *(p for p in self.processes if p != self.reference_process))


def _load_yaml(path: Path) -> dict:
    if not path.is_file():
        raise CalibrationConfigError(f"{path}: no calibration config here (the default is {DEFAULT_CONFIG})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CalibrationConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise CalibrationConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def validate_config(data: dict, source: str = "<config>") -> None:
    """Check ``data`` against the JSON schema; the error names the offending key path."""
    schema = json.loads(SCHEMA_PATH.read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(top level)"
        raise CalibrationConfigError(f"{source}: key {where}: {errors[0].message}")


def settings_from_dict(data: dict, source: str = "<config>") -> CalibrationSettings:
    """Validate a config mapping and build the settings (feature names checked too)."""
    from gelato.calibration.efficiency import VARIABLES

    validate_config(data, source)
    plots = data.get("plots", {})
    extra = {p: tuple(v) for p, v in plots.get("extra_efficiency_features", {}).items()}
    defaults = CalibrationSettings.__dataclass_fields__
    eff = tuple(plots.get("efficiency_features", defaults["efficiency_plot_features"].default))
    vs = tuple(plots.get("score_vs_features", defaults["score_vs_features"].default))
    for name in (*eff, *vs, *(n for names in extra.values() for n in names)):
        if name not in VARIABLES:
            raise CalibrationConfigError(f"{source}: plots: unknown feature {name!r}; expected one of {', '.join(VARIABLES)}")

    return CalibrationSettings(
        reference_process=data["reference_process"],
        processes=tuple(data["processes"]),
        rates_hz=tuple(sorted(int(r) for r in data["rates_hz"])),
        colliding_bunches=int(data["bunch_crossing"]["colliding_bunches"]),
        revolution_frequency_hz=float(data["bunch_crossing"]["revolution_frequency_hz"]),
        menu=Menu.from_config(data["menu"]),
        min_passing_events=int(data.get("min_passing_events", 10)),
        chunk_events=int(data.get("chunk_events", 65536)),
        csim_events=int(data.get("csim_events", 10000)),
        threshold_tail_events=int(data.get("threshold_tail_events", 1024)),
        score_file_features=str(data.get("score_file_features", "processes")),
        efficiency_plot_features=eff,
        extra_efficiency_plot_features=extra,
        score_vs_features=vs,
        source=source,
    )


def load_settings(path: str | Path | None = None) -> CalibrationSettings:
    """Read, validate and return the calibration settings (default: configs/calibration.yaml)."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    return settings_from_dict(_load_yaml(path), source=str(path))
