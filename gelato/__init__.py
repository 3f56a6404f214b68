"""GELATO: an open, bit-exact co-design toolkit for a Level-1 anomaly-detection trigger.

The stages live in top-level folders that install as subpackages of ``gelato``:

* ``gelato.samples``     (``samples/``)     Pythia8 events and the L1-object emulation;
* ``gelato.model``       (``model/``)       the QKeras VAE-GAN and its firmware export;
* ``gelato.hls``         (``hls/``)         hls4ml conversion, C-simulation and synthesis;
* ``gelato.calibration`` (``calibration/``) scores, thresholds, efficiencies and reports.

This package itself holds what every stage shares: the feature contract
(:mod:`gelato.features`), event-file I/O (:mod:`gelato.io`) and the CLI (:mod:`gelato.cli`).
"""

from pathlib import Path

__version__ = "0.1.0"

#: Root of the source checkout (the folder holding ``pyproject.toml``).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
