"""Samples stage (first of samples -> model -> hls -> calibration).

Pythia8 event generation at 13.6 TeV, pileup overlay and emulation of the ATLAS-like
Level-1 objects that make up the 44 input features; ``gelato generate`` writes one HDF5
event file per process.  See ``docs/samples.md``.
"""
