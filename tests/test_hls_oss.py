"""The open-source synthesis path: da4ml arithmetic, the score-stage Verilog, report bookkeeping.

Fast tests need only da4ml (a pinned dependency); the Verilator round trip is marked slow
and skips when Verilator is not installed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gelato.hls.fixedpoint import FixedType
from gelato.hls.oss_synth import goal_verdict, latency_summary, oss_markdown, resource_usage
from gelato.hls.rtl_top import mu_word_layout, score_stage_verilog
from gelato.hls.verilator_sim import compare_scores
from gelato.hls.yosys_synth import (
    YosysError, longest_path_carry_cells, parse_longest_path, parse_yosys_stat, synthesis_script,
)  # fmt: skip

FIXTURES = Path(__file__).parent / "fixtures" / "oss"
CONFIG = Path(__file__).parents[1] / "hls" / "configs" / "default.yaml"
RAW = FixedType.parse("ap_fixed<24,13,AP_RND_CONV,AP_SAT>")
SCALED = FixedType.parse("ap_fixed<24,10,AP_RND_CONV,AP_SAT>")
RELU = FixedType.parse("ap_ufixed<10,4,AP_RND_CONV,AP_SAT>")


def assert_scores_identical(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    differ = np.flatnonzero(got != expected)
    listed = [(int(i), float(got[i]), float(expected[i])) for i in differ[:5]]
    assert differ.size == 0, f"{what}: {differ.size} of {expected.size} differ, first (index, got, expected): {listed}"


def _raw_words(n_inputs: int):
    from da4ml.trace import FixedVariableArray, HWConfig

    from gelato.hls.rtl import da4ml_kif

    sign, integer, fraction = da4ml_kif(RAW)
    return FixedVariableArray.from_kif(np.full(n_inputs, sign), np.full(n_inputs, integer),
                                       np.full(n_inputs, fraction), hwconf=HWConfig(1, -1, -1))


def test_da4ml_casts_round_half_to_even_and_saturate_like_ap_fixed():
    from da4ml.trace import FixedVariableArray, comb_trace

    from gelato.hls.rtl import _cast_array

    shifts = np.array([7, 5, 3, 1, 0, -2])
    words = _raw_words(len(shifts))
    scaled = _cast_array(words * 2.0 ** -shifts, SCALED)
    relu = _cast_array((scaled * 3.0 - 1.0).relu(), RELU)
    comb = comb_trace(words, FixedVariableArray(np.concatenate([scaled._vars, relu._vars]), None))

    rng = np.random.default_rng(7)
    codes = rng.integers(RAW.min_code, RAW.max_code + 1, size=(6000, len(shifts)))
    codes[:3000] = rng.integers(-300, 300, size=(3000, len(shifts))) * 128 + rng.integers(-1, 2, size=(3000, 1)) * 64
    codes[3000:3010], codes[3010:3020] = RAW.max_code, RAW.min_code
    words_in = codes * RAW.lsb
    assert (np.ldexp(codes, -shifts.clip(0)) % 1 == 0.5).sum() > 1000  # many exact ties

    out = comb.predict(words_in)
    expected_scaled = SCALED.quantize(np.ldexp(words_in, -shifts))
    assert_scores_identical(out[:, : len(shifts)], expected_scaled, "scaled input")
    assert_scores_identical(out[:, len(shifts) :], RELU.quantize(np.maximum(expected_scaled * 3 - 1, 0)), "relu")


def test_traced_encoder_squares_equal_the_integer_reference_on_a_small_model():
    from gelato.features import SEED_SHIFTS
    from gelato.hls.config import load_hls_config
    from gelato.hls.reference import reference_scores
    from gelato.hls.rtl import trace_encoder
    from gelato.model.firmware import build_firmware_model

    model = build_firmware_model(SEED_SHIFTS, hidden_units=(6, 5))
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    config = load_hls_config(CONFIG)
    traced = trace_encoder(model, config)

    features = rng.normal(0, 50, (3000, 44)).astype(np.float32)
    latent = traced.comb.predict(traced.raw_input.codes(features.astype(np.float64)) * traced.raw_input.lsb)
    assert latent.shape == (3000, 3)
    assert_scores_identical((latent**2).sum(axis=1), reference_scores(model, config, features), "score")


def test_score_stage_shifts_squares_onto_the_score_lsb():
    verilog = score_stage_verilog("top", "enc", 44, 24, 3, 18, 11, 46, 22)
    assert "input [1055:0] l1_objects" in verilog and "output reg [45:0] score" in verilog
    assert "wire signed [17:0] mu_2 = mu_words[36 +: 18];" in verilog
    assert "square_sum << 0;" in verilog
    assert verilog.count("<= mu_") == 3
    assert "enc_wrapper encoder (.clk(clk)" in verilog


def test_score_stage_with_coarser_latent_lsb_shifts_left():
    assert "square_sum << 4;" in score_stage_verilog("top", "enc", 44, 24, 3, 16, 9, 46, 22)


def test_score_stage_refuses_a_score_that_would_need_rounding():
    with pytest.raises(NotImplementedError, match="rounding the score"):
        score_stage_verilog("top", "enc", 44, 24, 3, 18, 12, 46, 22)


def test_mu_word_layout_takes_the_widest_integer_and_fraction():
    assert mu_word_layout([[1, 1, 0], [6, 7, 5], [11, 9, 11]]) == (1 + 7 + 11, 11)


def test_compare_scores_counts_and_lists_the_first_mismatches():
    reference = np.arange(20, dtype=np.float64)
    rtl = reference.copy()
    rtl[[3, 17]] += 2.0**-22
    result = compare_scores(rtl, reference, max_listed=1)
    assert result["events"] == 20 and result["mismatches"] == 2
    assert result["first_mismatches"] == [{"event": 3, "rtl": 3 + 2.0**-22, "reference": 3.0}]
    with pytest.raises(ValueError, match="not the same events"):
        compare_scores(rtl[:5], reference)


def test_yosys_stat_fixture_parses_to_resource_classes():
    stats = parse_yosys_stat(FIXTURES / "yosys_stat_small_xcup.json", "t")
    assert stats["resources"]["LUT"] == 21 + 7 + 11 + 18 + 29
    assert (stats["resources"]["FF"], stats["resources"]["CARRY"], stats["resources"]["MUXF"]) == (24, 6, 15)
    assert stats["resources"]["DSP"] == 0 and stats["estimated_logic_cells"] == 67
    assert stats["cells_by_type"]["BUFG"] == 1


def test_yosys_stat_with_foreign_cells_is_refused(tmp_path):
    data = json.loads((FIXTURES / "yosys_stat_small_xcup.json").read_text())
    data["design"]["num_cells_by_type"]["$_AND_"] = 3
    path = tmp_path / "stat.json"
    path.write_text(json.dumps(data))
    with pytest.raises(YosysError, match=r"\$_AND_"):
        parse_yosys_stat(path)
    path.write_text("{}")
    with pytest.raises(YosysError, match="num_cells_by_type"):
        parse_yosys_stat(path)


def test_longest_path_is_read_from_the_yosys_log():
    log_text = (FIXTURES / "yosys_ltp_small.log").read_text()
    assert parse_longest_path(log_text) == 7 and longest_path_carry_cells(log_text) == 3
    assert parse_longest_path("no ltp here") is None and longest_path_carry_cells("no ltp here") is None


def test_synthesis_script_targets_ultrascale_plus_without_dsp_by_default():
    script = synthesis_script([Path("/a.v"), Path("/b.v")], "top", use_dsp=False, stat_path="s.json")
    assert "synth_xilinx -family xcup -noiopad -flatten -top top -nodsp" in script
    assert "tee -q -o s.json stat -json -tech xilinx" in script
    assert "-nodsp" not in synthesis_script([Path("/a.v")], "top", use_dsp=True, stat_path="s.json")


def test_resource_usage_gives_vu9p_percentages_and_pairs_carry4_into_carry8():
    usage = resource_usage({"LUT": 11800, "FF": 100, "CARRY": 7, "DSP": 0}, "xcvu9p-flgb2104-2-e")
    assert usage["LUT"] == {"used": 11800, "available": 1_182_240, "percent": 0.9981}
    assert usage["CARRY"] == {"used": 4, "available": 147_780, "percent": 0.0027}
    assert usage["DSP"]["available"] == 6840 and usage["DSP"]["percent"] == 0.0


def test_latency_and_goal_verdicts_at_the_budget_edge():
    fits = latency_summary(8, 6.25, 2)
    assert (fits["latency_ns"], fits["latency_bx"], fits["fits_latency_budget"]) == (50.0, 2.0, True)
    late = latency_summary(9, 6.25, 2)
    assert late["fits_latency_budget"] is False
    resources = resource_usage({"LUT": 12000, "DSP": 1}, "xcvu9p")
    assert goal_verdict({**fits, "resources": resources}) == {"latency": True, "lut_at_most_1_percent": False,
                                                              "no_dsp": False}
    assert goal_verdict({**late, "resources": None})["lut_at_most_1_percent"] is None


def test_markdown_says_the_figures_are_estimates_from_open_tools():
    summary = {
        "label": "estimates from open tools", "top": "t_top", "rtl_dir": "build/hls/oss/rtl", "part": "xcvu9p",
        "clock_period_ns": 6.25, "adders_per_clock": 5, "encoder_stages": 6, "score_stages": 2,
        **latency_summary(8, 6.25, 2), "rtl_vs_emulation": {"events": 10000, "mismatches": 0},
        "resources": resource_usage({"LUT": 100, "FF": 50, "CARRY": 10, "DSP": 0}, "xcvu9p"),
        "yosys_estimated_logic_cells": 80, "longest_register_path_cells": 12, "dsp_inference": False,
        "pipeline_options": [{"adders_per_clock": 4, "encoder_stages": 7, "latency_cycles": 9, "latency_ns": 56.25},
                             {"adders_per_clock": 5, "encoder_stages": 6, "latency_cycles": 8, "latency_ns": 50.0}],
        "timings": {"yosys_s": 1.0},
    }  # fmt: skip
    summary["goal"] = goal_verdict(summary)
    text = oss_markdown(summary)
    assert "**estimates from open tools.**" in text
    assert "10000 real events, **0 mismatches**" in text and "| LUT | 100 | 1182240 |" in text
    assert "with 4 levels the latency is 9 clocks = 56.25 ns, which **exceeds** the budget" in text


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("verilator") is None, reason="Verilator not installed (make oss-tools)")
def test_verilator_streams_a_small_model_bit_exact_with_the_emulation(tmp_path):
    from gelato.features import SEED_SHIFTS
    from gelato.hls.emulate import FirmwareEmulator
    from gelato.hls.oss_synth import simulate_against_emulation
    from gelato.hls.rtl import load_or_trace
    from gelato.hls.rtl_top import write_rtl_project
    from gelato.model.firmware import build_firmware_model, save_firmware_model

    model = build_firmware_model(SEED_SHIFTS, hidden_units=(6, 5))
    rng = np.random.default_rng(11)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    save_firmware_model(model, tmp_path / "small.h5")

    traced = load_or_trace(tmp_path / "small.h5", CONFIG, tmp_path / "trace")
    project = write_rtl_project(traced, tmp_path / "rtl", "small", 3, 6.25, "xcvu9p-flgb2104-2-e")
    emulator = FirmwareEmulator(tmp_path / "small.h5", CONFIG, tmp_path / "hls")
    features = rng.normal(0, 60, (2000, 44)).astype(np.float32)
    features[:100] = np.round(features[:100] * 4) / 4  # pT-like grid values: many rounding ties after the shift
    features[100:200] = rng.choice([-1e4, -4096.0, -512.0, 0.0, 511.99, 4095.9995, 1e4], size=(100, 44))  # saturation
    comparison, _ = simulate_against_emulation(project, emulator, features, jobs=1)
    assert comparison["events"] == 2000 and comparison["mismatches"] == 0, comparison["first_mismatches"]


def _synth_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["--model", str(tmp_path / "absent.h5"), "--out", str(tmp_path / "build"),
            "--reports", str(tmp_path / "reports"), *extra]


def test_synth_without_vendor_tools_falls_back_to_the_open_source_path_and_says_so(tmp_path, monkeypatch, capsys):
    from gelato.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))  # neither vendor tools nor Verilator here
    code = main(["synth", *_synth_args(tmp_path)])
    err = capsys.readouterr().err
    assert "no vendor HLS tool on PATH (looked for vitis-run, vitis_hls, vivado_hls)" in err
    assert "running the open-source path" in err and "Verilator not found" in err
    assert code == 3 and not (tmp_path / "reports").exists()


def test_synth_path_vendor_does_not_fall_back(tmp_path, monkeypatch, capsys):
    from gelato.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))
    code = main(["synth", "--path", "vendor", *_synth_args(tmp_path)])
    err = capsys.readouterr().err
    assert code == 3 and "open-source" not in err and "nothing was synthesised" in err


def test_synth_oss_without_verilator_names_the_install_step(tmp_path, monkeypatch, capsys):
    from gelato.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))
    code = main(["synth-oss", *_synth_args(tmp_path)])
    err = capsys.readouterr().err
    assert code == 3 and "apt-get install verilator" in err and "make oss-tools" in err


def test_yosys_heartbeat_names_the_pass_being_run(tmp_path):
    from gelato.hls.yosys_synth import _current_pass

    log_path = tmp_path / "yosys.log"
    assert _current_pass(log_path) == ""
    log_path.write_text("\n1. Executing Verilog-2005 frontend: a.v\n...\n2.14. Executing ABC pass (technology mapping).\n")
    assert _current_pass(log_path) == "Executing ABC pass (technology mapping)."
