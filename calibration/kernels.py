"""Compiled bin lookups of the calibration's hot loops (numba, no Python objects, GIL released).

Each kernel equals numpy's binary search (``gelato.calibration.efficiency.bin_index``) on
every value, NaN and infinities included (tested).  They replace numpy expressions that
made a dozen passes over each chunk and held the GIL between them, so the calibration's
chunk threads waited for each other: measured on a 15,000-event chunk, 50 us per variable
against 220 us.

Kernels compile on first use (about a second each) and are cached on disk by numba
(``__pycache__`` beside this file, or numba's user cache when that is not writable).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(nogil=True, cache=True, inline="always")
def _corrected(value, guess, edges, top):
    """``guess``, off by at most one bin, moved to the bin of ``value`` on ``edges`` (bins 0..top)."""
    if guess > 0 and value < edges[guess]:
        guess -= 1
    if guess < top and value >= edges[guess + 1]:
        guess += 1
    return guess


@numba.njit(nogil=True, cache=True)
def grid_bins(values, present, origin, inverse_step, table, edges, absent, out):
    """Bin of each value on ``edges`` (underflow first, overflow and NaN last), ``absent`` where not present.

    The value's grid cell ``(value - origin) * inverse_step`` gives a bin through ``table``,
    off by at most one where rounding meets a cell boundary, corrected against the edges.
    """
    last, top = len(table) - 1, len(edges) - 2
    for i in range(len(values)):
        if not present[i]:
            out[i] = absent
            continue
        value = values[i]
        if np.isnan(value):
            cell = last
        else:
            position = (np.float64(value) - origin) * inverse_step
            cell = 0 if position <= 0.0 else (last if position >= last else int(position))
        out[i] = _corrected(value, table[cell], edges, top)
    return out


@numba.njit(nogil=True, cache=True)
def log_bins(scores, lsb, bins_per_octave, edges, out):
    """Bin of each score on edges 0, lsb, lsb * 2**(1/k), ... (below lsb: 0; overflow and NaN: the last).

    The guess from the logarithm is corrected against the edges, as in :func:`grid_bins`.
    """
    top = len(edges) - 2
    for i in range(len(scores)):
        score = np.float64(scores[i])
        if np.isnan(score):
            guess = top
        elif not score >= lsb:
            guess = 0
        else:
            position = np.floor(np.log2(score / lsb) * bins_per_octave) + 1.0
            guess = top if position >= top else int(position)
        out[i] = _corrected(score, guess, edges, top)
    return out


@numba.njit(nogil=True, cache=True)
def menu_items(features, first, n_objects, pt_min, eta_min, eta_max, count, out):
    """Decisions (N, items) of L1 items on raw features (N, 44), one pass over each event's row.

    Item k looks at ``n_objects[k]`` objects whose (pt, eta, phi) start at column
    ``first[k]`` (stride 3).  An object counts when ``pt >= pt_min[k]``, ``pt > 0`` and
    ``eta_min[k] <= |eta| < eta_max[k]`` (``eta_max`` +inf: no upper edge, an infinite |eta|
    included); the item fires
    with at least ``count[k]`` objects.  ``n_objects[k] == 0`` marks a MET item: it fires
    when column ``first[k]`` is at least ``pt_min[k]``.  Thresholds come in the features'
    dtype, so float32 features are compared as numpy compares them to a Python float.
    """
    for i in range(features.shape[0]):
        for k in range(len(first)):
            if n_objects[k] == 0:
                out[i, k] = features[i, first[k]] >= pt_min[k]
                continue
            counted = 0
            for o in range(n_objects[k]):
                pt = features[i, first[k] + 3 * o]
                abs_eta = abs(features[i, first[k] + 3 * o + 1])
                if (pt >= pt_min[k] and pt > 0 and abs_eta >= eta_min[k]
                        and (abs_eta < eta_max[k] or eta_max[k] == np.inf)):
                    counted += 1
            out[i, k] = counted >= count[k]
    return out


@numba.njit(nogil=True, cache=True)
def variable_histograms(index, weights, pattern, totals, totals_w2, by_pattern):
    """Add each event's weight w to ``totals[index]``, w*w to ``totals_w2[index]`` and w to
    ``by_pattern[index, pattern]``, in event order (the sums ``np.bincount`` gives)."""
    for i in range(len(index)):
        w = weights[i]
        totals[index[i]] += w
        totals_w2[index[i]] += w * w
        by_pattern[index[i], pattern[i]] += w


@numba.njit(nogil=True, cache=True)
def count_positive(features, first, n_objects, out):
    """Per event, how many of the ``n_objects`` values at columns ``first``, ``first + 3``, ... are > 0
    (the object multiplicity of zero-padded (pt, eta, phi) blocks)."""
    for i in range(features.shape[0]):
        counted = 0
        for o in range(n_objects):
            if features[i, first + 3 * o] > 0:
                counted += 1
        out[i] = counted
    return out
