"""Figures of the calibration report, drawn with matplotlib and mplhep's ATLAS style (calibration stage).

Three families, kept to a few dozen PNGs:

* score distributions, one per sample: emulated (solid) and float (dashed) scores, log y,
  with a vertical line at the emulated threshold of every rate;
* score versus feature, one figure per feature with a panel per sample (emulated score);
* efficiency curves, one figure per (process, feature) with every rate on it (emulated).

All figures say "Simulation" (mplhep ``data=False``).  Drawing uses the Agg backend and is
deterministic; file writes go through :func:`gelato.io.atomic_output`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from gelato.calibration.efficiency import VARIABLES, ProcessHistograms  # noqa: E402
from gelato.io import atomic_output  # noqa: E402

log = logging.getLogger(__name__)

mplhep.style.use("ATLAS")
RATE_COLORS = plt.get_cmap("viridis")
MARKERS = ("o", "s", "^", "v", "D", "P")


def _rate_color(i: int, n: int):
    return RATE_COLORS(0.9 * i / max(1, n - 1))


def _save(fig: plt.Figure, path: Path) -> Path:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return path


def _label(ax: plt.Axes, process: str, extra: str = "") -> None:
    mplhep.atlas.label(ax=ax, data=False, text="Internal", rlabel=f"{process}{extra}", loc=0, fontsize=14)


def _drawable(score_edges: np.ndarray) -> np.ndarray:
    """Score edges for a log axis: the first bin [0, e1) is drawn from e1 / 2."""
    edges = np.array(score_edges, dtype=np.float64)
    edges[0] = 0.5 * edges[1]
    return edges


def plot_score_distribution(
    process: str, counts: Mapping[str, np.ndarray], min_weight: float, score_edges: np.ndarray,
    thresholds: Mapping[int, dict], path: Path,
) -> Path:
    """Weighted score histograms of one sample (``counts[kind]`` on ``score_edges``) with the emulated thresholds."""
    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(13, 6), gridspec_kw={"width_ratios": [1.6, 1]})
    edges = _drawable(score_edges)
    rates = sorted(thresholds)
    for axis in (ax, zoom):
        for kind, style in (("emulated", "-"), ("float", "--")):
            axis.stairs(counts[kind], edges, linestyle=style, label=f"{kind} score", linewidth=1.8)
        for i, rate in enumerate(rates):
            axis.axvline(thresholds[rate]["threshold"], color=_rate_color(i, len(rates)), linestyle=":", linewidth=1.6,
                         label=f"{rate} Hz: {thresholds[rate]['threshold']:.5g}")

    bottom, peak = max(0.5 * min(min_weight, 1.0), 1e-3), max(float(np.max(counts["emulated"], initial=0.0)), 1.0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(bottom=bottom, top=peak * 50)  # room for the legend above the peak
    ax.set_xlabel(f"anomaly score (first bin: < {score_edges[1]:.3g}; last: overflow)")
    ax.set_ylabel("events (weighted)")
    ax.legend(title="emulated thresholds", fontsize=10, title_fontsize=10, ncol=2, loc="upper right", frameon=True,
              framealpha=0.9)
    _label(ax, process)
    _threshold_zoom(zoom, [thresholds[r]["threshold"] for r in rates], rates, bottom, peak)
    fig.tight_layout()
    return _save(fig, path)


def _threshold_zoom(ax: plt.Axes, values: list[float], rates: list[int], bottom: float, peak: float) -> None:
    """The score range of the thresholds on a linear axis, each line labelled with its rate."""
    low, high = min(values), max(values)
    margin = max(0.15 * (high - low), 0.02 * high, 1e-9)
    ax.set_xlim(low - margin, high + margin)
    ax.set_yscale("log")
    ax.set_ylim(bottom=bottom, top=peak * 50)
    for value, rate in zip(values, rates):
        ax.text(value, 0.97, f" {rate} Hz", rotation=90, va="top", ha="right", fontsize=9,
                transform=ax.get_xaxis_transform())
    ax.set_xlabel("anomaly score, around the thresholds")
    ax.set_title("zoom: thresholds (bins of the left panel)", fontsize=11)


def plot_score_vs_feature(
    feature: str,
    score_2d: Mapping[str, np.ndarray],
    score_edges: np.ndarray,
    thresholds: Mapping[int, dict],
    path: Path,
) -> Path:
    """2-D histograms of emulated score versus ``feature``, one panel per sample (log score axis).

    Dashed lines mark the emulated thresholds of the lowest and highest rate.
    """
    processes = list(score_2d)
    ncols = min(4, len(processes))
    nrows = int(np.ceil(len(processes) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 4.4 * nrows), squeeze=False)
    edges, score_drawn = VARIABLES[feature].edges, _drawable(score_edges)

    for ax, process in zip(axes.flat, processes):
        counts = score_2d[process]
        positive = counts[counts > 0]
        if positive.size:
            mesh = ax.pcolormesh(edges, score_drawn, counts.T, norm=LogNorm(positive.min(), max(positive.max(), 1.01 * positive.min())),
                                 cmap="viridis", rasterized=True)
            fig.colorbar(mesh, ax=ax, pad=0.01)
        ax.set_yscale("log")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(score_drawn[0], score_drawn[-1])
        ax.set_xlabel(VARIABLES[feature].label, fontsize=11)
        ax.set_ylabel("emulated score", fontsize=11)
        ax.tick_params(labelsize=9)
        ax.set_title(process, fontsize=12, loc="right")  # above the panel, never over the data
        for rate, color in ((min(thresholds), "tab:red"), (max(thresholds), "tab:orange")):
            ax.axhline(thresholds[rate]["threshold"], color=color, linestyle="--", linewidth=1.2, label=f"{rate} Hz")
        if process == processes[0]:
            ax.legend(loc="lower right", fontsize=9, title="threshold", title_fontsize=9)
    for ax in list(axes.flat)[len(processes):]:
        ax.axis("off")
    mplhep.atlas.label(ax=axes.flat[0], data=False, text="Internal", rlabel="", loc=0, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_efficiency(
    process: str, feature: str, hists: ProcessHistograms, rates: Sequence[int], path: Path, kind: str = "emulated"
) -> Path:
    """Efficiency versus ``feature`` for every rate, with 68% Clopper-Pearson bars; empty bins skipped."""
    fig, ax = plt.subplots(figsize=(8, 6))
    for i, rate in enumerate(rates):
        curve = hists.curve(feature, (kind, rate))
        edges = np.asarray(curve["edges"])
        eff, lo, hi = (np.asarray(curve[k]) for k in ("efficiency", "lo", "hi"))
        filled = np.asarray(curve["weight_total"]) > 0
        centers, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * np.diff(edges)
        ax.errorbar(centers[filled], eff[filled], xerr=half[filled],
                    yerr=[np.clip(eff - lo, 0, None)[filled], np.clip(hi - eff, 0, None)[filled]],
                    fmt=MARKERS[i % len(MARKERS)], markersize=4, markerfacecolor="none" if i % 2 else None, linewidth=1.2, color=_rate_color(i, len(rates)), label=f"{rate} Hz")

    ax.set_ylim(0, 1.3)
    ax.set_xlim(VARIABLES[feature].edges[0], VARIABLES[feature].edges[-1])
    ax.set_xlabel(VARIABLES[feature].label + " (last bin: overflow)")
    ax.set_ylabel(f"anomaly-trigger efficiency ({kind})")
    ax.legend(title="added unique rate", fontsize=10, title_fontsize=10, ncol=3, loc="upper right")
    _label(ax, process)
    return _save(fig, path)
