"""The one-line verdict and the markdown page of ``gelato bitexact`` (hls stage).

:func:`verdict_line` is what ``make bitexact`` prints and what the calibration report
quotes; :func:`markdown` writes ``reports/bitexact.md`` from the result dict of
:func:`gelato.hls.bitexact.run_bitexact` (whose JSON is the machine-readable twin).
"""

from __future__ import annotations

PAIR_LABELS = {"reference_vs_emulation": "integer reference vs emulation (ap_fixed firmware C++)",
               "csim_vs_emulation": "C-simulation vs emulation", "csim_vs_reference": "C-simulation vs reference",
               "fast_vs_emulation": "fast scorer (used by the calibration) vs emulation"}

#: What the event sets hold and how a disagreement is located (so the page stands on its own).
METHOD = (
    "Paths: the integer **reference** (numpy, written from the config and weights, no hls4ml), the "
    "**emulation** (the firmware C++ of the hls4ml project with ap_fixed types, compiled by g++ and run through "
    "the batch driver), the **C-simulation** (the generated HLS testbench built with g++, reading the float32 "
    "inputs from text files) and the **fast scorer** the calibration runs on. Event sets: every event of every "
    "committed sample; `random_full_range` (every feature uniform over the raw input type's range and 5 % "
    "beyond); `random_physical` (pT-ordered, zero-padded objects with physical spectra); `edge_cases` (values at, "
    "one LSB inside and beyond each type's limits, exact rounding ties of the raw and scaled words, zero-padded "
    "objects, negative and out-of-range eta and phi). When any pair disagrees, the first disagreeing events are "
    "run through a traced copy of the generated C++ and compared layer by layer with the reference; the section "
    "\"Where they diverge\" below then names the first layer that differs (absent when nothing differs)."
)


def verdict_line(result: dict) -> str:
    """``bitexact: PASS reference=emulation=csim on N events (M committed + K random/edge), 0 mismatches``."""
    events, pairs = result["events"], result["pairs"]
    counted = (f"{events['total']:,} events ({events['committed']:,} committed + "
               f"{events['random_and_edge']:,} random/edge)")
    paths = "reference=emulation=csim" if result["csim_run"] else "reference=emulation (C-simulation not run)"
    if pairs.get("fast_vs_emulation", {}).get("events"):
        paths += "=fast"
    if result["verdict"] == "PASS":
        return f"bitexact: PASS {paths} on {counted}, 0 mismatches"
    counts = ", ".join(f"{key.replace('_vs_', '-')} {pair['mismatches']:,}" for key, pair in pairs.items()
                       if pair["events"])
    where = ""
    if result.get("divergence"):
        divergence = result["divergence"]
        where = (f"; first diverging layer {divergence['layer']} at {', '.join(divergence['events'][:3])}"
                 if divergence.get("layer") else f"; {divergence['summary']}")
    return f"bitexact: FAIL on {counted}: mismatches {counts}{where}"


def markdown(result: dict) -> str:
    """The readable report ``bitexact.md``."""
    lines = ["# Bit-exactness: integer reference, emulation and C-simulation", "", f"**{result['verdict_line']}**", "",
             f"Model `{result['inputs']['model']}`, config `{result['inputs']['hls_config']}`; score type "
             f"`{result['score_type']}`; random and edge-case sets from seed {result['seed']}.", "", METHOD, "",
             "## Pairs of paths, all sets", "", "| comparison | events | mismatches |", "|---|---:|---:|"]
    for key, pair in result["pairs"].items():
        lines.append(f"| {PAIR_LABELS[key]} | {pair['events']:,} | {pair['mismatches']:,} |")
    lines += ["", "## Per event set", "",
              "| set | events | reference-emulation | C-simulated | csim-emulation | csim-reference | "
              "emulation vs float: max abs diff | fraction beyond float32 rounding |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in result["sets"].items():
        flt = s["emulation_vs_float"]
        csim = [s.get(k, {}).get("mismatches", "-") for k in ("csim_vs_emulation", "csim_vs_reference")]
        lines.append(f"| {name} | {s['events']:,} | {s['reference_vs_emulation']['mismatches']:,} | "
                     f"{s['csim_events']:,} | {csim[0]} | {csim[1]} | {flt['max_abs_diff']:.6g} | "
                     f"{flt.get('frac_differ_beyond_float32', float('nan')):.4f} |")
    lines += ["", "The float Keras model is not bit-exact by design (it computes in float32); its difference "
              "matters on the committed samples. The random and edge-case sets saturate input words on purpose, "
              "where the float model and the firmware part ways.", ""]
    lines += _coverage_lines(result)
    lines += _mismatch_lines(result)
    timing = result["timing_s"]
    lines += ["## Timing", "", f"Total {timing['total']} s. Per set (s): " + "; ".join(
        f"{name}: " + ", ".join(f"{k} {v}" for k, v in t.items()) for name, t in timing["per_set"].items()), ""]
    return "\n".join(lines)


def _coverage_lines(result: dict) -> list[str]:
    keys = list(next(iter(result["sets"].values()))["coverage"])
    lines = ["## What the sets reach (input words)", "", "| set | " + " | ".join(k.replace("_", " ") for k in keys)
             + " |", "|---|" + "---:|" * len(keys)]
    for name, s in result["sets"].items():
        lines.append(f"| {name} | " + " | ".join(f"{s['coverage'][k]:,}" for k in keys) + " |")
    return lines + ["", "A tie lies exactly half-way between two codes (half to even and half up differ on it); "
                    "a scaled word is counted as saturated only when its raw word was not.", ""]


def _mismatch_lines(result: dict) -> list[str]:
    mismatches = [m for pair in result["pairs"].values() for m in pair["first_mismatches"]]
    if not mismatches:
        return []
    lines = ["## First mismatches", "", "| set | event | values |", "|---|---:|---|"]
    for m in mismatches:
        values = ", ".join(f"{k} {v!r}" for k, v in m.items() if k not in ("set", "event"))
        lines.append(f"| {m['set']} | {m['event']} | {values} |")
    divergence = result.get("divergence") or {}
    lines += ["", "## Where they diverge (per-layer traces)", "", divergence.get("summary", "not traced"), ""]
    if divergence.get("details"):
        lines += ["| event | unit | reference | generated C++ | units differing |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {d['event']} | {d['unit']} | {d['expected']!r} | {d['actual']!r} | {d['units_differing']} |"
                  for d in divergence["details"]]
        lines.append("")
    return lines
