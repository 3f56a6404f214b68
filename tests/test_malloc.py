"""The malloc arena cap the CLI sets before any thread starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gelato.malloc import cap_malloc_arenas, usable_cores

GLIBC = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else False


def test_a_cap_set_in_the_environment_is_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "3")
    assert cap_malloc_arenas() is None


def test_a_cap_below_one_is_refused(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    with pytest.raises(ValueError, match="at least 1, got 0"):
        cap_malloc_arenas(0)


@pytest.mark.skipif(not GLIBC, reason="mallopt(M_ARENA_MAX) is glibc's")
def test_the_default_cap_is_one_arena_per_usable_core_and_at_least_two():
    # a fresh interpreter, so the cap of this test process is not changed
    code = "from gelato.malloc import cap_malloc_arenas; print(cap_malloc_arenas())"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert int(out) == max(2, usable_cores())


@pytest.mark.skipif(not GLIBC, reason="mallopt(M_ARENA_MAX) is glibc's")
def test_many_short_lived_threads_stay_within_the_cap():
    # glibc's malloc_info lists one <heap nr=...> per arena; with the cap, rounds of new
    # threads that each allocate and free buffers never open more arenas than the cap (without
    # it, 7 arenas here).
    code = """
import ctypes, concurrent.futures, os, tempfile
import numpy as np
from gelato.malloc import cap_malloc_arenas
cap = cap_malloc_arenas(2)
def work(_):
    return float(sum(np.ones(20000 + i).sum() for i in range(20)))
for _ in range(10):
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(work, range(24)))
libc = ctypes.CDLL(None)
libc.fdopen.restype = ctypes.c_void_p
libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.TemporaryFile() as f:
    stream = libc.fdopen(os.dup(f.fileno()), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    f.seek(0)
    print(cap, f.read().decode().count("<heap nr="))
"""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    cap, arenas = map(int, out.split())
    assert cap == 2 and 1 <= arenas <= 2
