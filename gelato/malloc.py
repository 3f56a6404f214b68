"""A cap on glibc's malloc arenas, so that repeated threaded passes do not ratchet memory up.

glibc gives a thread that finds the existing arenas busy a new arena, up to eight per
core.  The calibration's chunk tasks run on pools of short-lived threads (a reader and
the workers, new ones for every pass), so successive passes land on ever more arenas,
each keeping the freed chunk buffers of its last pass: measured here, the resident set
after each of five end-to-end passes on the committed samples rose 624 -> 830 -> 883 ->
939 -> 1014 MiB with glibc's default, and stayed at 780-825 MiB with one arena per
usable core (2 or 4 arenas: same speed within the machine's noise).

:func:`cap_malloc_arenas` sets that cap through ``mallopt(M_ARENA_MAX)``.  It only
affects arenas created afterwards, so the CLI calls it first thing.  A cap the user set
with the ``MALLOC_ARENA_MAX`` environment variable is left as it is, and where the C
library is not glibc nothing is done.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

#: ``M_ARENA_MAX`` of glibc's ``<malloc.h>``.
M_ARENA_MAX = -8


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cap_malloc_arenas(arenas: int | None = None) -> int | None:
    """Cap glibc's malloc arenas at ``arenas`` (default: the usable cores, at least 2); the cap set, or None.

    None when ``MALLOC_ARENA_MAX`` is set in the environment (glibc already applied it)
    or the C library has no ``mallopt`` (not glibc).
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return None
    cap = max(2, usable_cores()) if arenas is None else arenas
    if cap < 1:
        raise ValueError(f"the malloc arena cap must be at least 1, got {cap}")
    try:
        libc = ctypes.CDLL(None)
        mallopt, glibc_version = libc.mallopt, libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return None
    glibc_version.restype = ctypes.c_char_p
    if mallopt(M_ARENA_MAX, cap) != 1:
        log.debug("mallopt(M_ARENA_MAX, %d) refused by glibc %s", cap, glibc_version().decode())
        return None
    return cap


def release_free_memory() -> bool:
    """Give the memory that ``free`` kept in glibc's arenas back to the system (``malloc_trim(0)``).

    Between the steps of a long-lived process (the benchmark's scorer runs, then the
    calibration) this keeps the freed buffers of one step out of the next step's resident
    set.  False where the C library is not glibc.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True
