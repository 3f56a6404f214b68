"""The hls stage: firmware model + YAML config -> hls4ml project, emulation, C-simulation, synthesis.

Modules: ``fixedpoint`` (ap_fixed types in numpy), ``config`` (the validated YAML and the
overflow proofs), ``extension`` (the bit-shift layer for hls4ml), ``convert`` (project
generation and compilation), ``batch`` (fast C++ batch driver), ``emulate``
(:class:`FirmwareEmulator`), ``reference`` (integer-arithmetic reference), ``csim`` (g++
C-simulation and bit-exactness report), ``synth`` (vendor synthesis and its reports),
``commands`` (the CLI). See ``docs/firmware.md``.
"""
