"""The hls stage: firmware model + YAML config -> hls4ml project, emulation, C-simulation, synthesis.

Modules: ``fixedpoint`` (ap_fixed types in numpy), ``config`` (the validated YAML and the
overflow proofs), ``extension`` (the bit-shift layer for hls4ml), ``convert`` (project
generation and compilation), ``batch`` (fast C++ batch driver), ``emulate``
(:class:`FirmwareEmulator`), ``reference`` (integer-arithmetic reference, per-layer
traces), ``csim`` (g++ C-simulation and its report), ``exact_types`` (the narrowest exact
types for a model), ``input_sets`` (random and edge-case events), ``trace`` (hls4ml traces
and the first diverging layer), ``bitexact`` and ``bitexact_report`` (reference =
emulation = C-simulation, ``gelato bitexact``), ``synth`` (vendor synthesis and its
reports), ``commands`` (the CLI). See ``docs/firmware.md``.
"""
