"""Failures reported from fixed-point trigger firmware in this field, each a test with the right value.

Narrow accumulators that overflow silently, saturation against wrap, a score type that
wraps above its maximum, weights in the firmware that differ from the emulation's, batch
normalization folded twice, and a shift table that does not fit its types or was swapped.
Each test checks both that the GELATO firmware does the right thing and that the faulty
behaviour would have been visible (the value differs, or the configuration is refused).
"""

from __future__ import annotations

import copy
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import edge_events

from gelato.features import SEED_SHIFTS
from gelato.hls.config import DEFAULT_CONFIG, PrecisionError, dense_sum_range, load_hls_config
from gelato.hls.convert import precision_plan, quantizer_type
from gelato.hls.fixedpoint import FixedType

HLS4ML_MODEL_DEFAULT = "ap_fixed<16,6>"  # what hls4ml falls back to for a type left unset


def _defined_types(project_dir: Path) -> dict[str, str]:
    """typedefs of the generated firmware/defines.h: name -> C++ type."""
    text = (project_dir / "firmware" / "defines.h").read_text()
    return {name: cpp for cpp, name in re.findall(r"typedef\s+(ap_u?fixed<[^>]*>)\s+(\w+);", text)}


def test_every_generated_accumulator_is_full_width_including_the_score(firmware):
    emulator, _ = firmware
    plan = emulator.project.plan
    typedefs = _defined_types(emulator.project_dir)
    for spec in plan.dense:
        accum = plan.layer_types[spec.name]["accum"]
        lowest, highest = dense_sum_range(spec)  # every sum the input, weight and bias types allow
        assert accum.min_value <= lowest and highest <= accum.max_value, f"{spec.name}: {accum} can overflow"
        # the rule of thumb (input + weight width + ceil(log2 n_in)) is an upper bound of the exact width
        rule = spec.input_type.width + spec.weight_type.width + math.ceil(math.log2(spec.n_in))
        assert accum.width <= rule + 1 and accum.fractional == spec.input_type.fractional + spec.weight_type.fractional
        assert FixedType.parse(typedefs[f"{spec.name}_accum_t"]) == accum  # what synthesis reads
    score_accum = FixedType.parse(typedefs["score_accum_t"])
    assert score_accum == plan.layer_types["score"]["accum"] != FixedType.parse(HLS4ML_MODEL_DEFAULT)
    latent = plan.layer_types["mu"]["result"]
    assert score_accum.max_value >= 3 * max(latent.min_value**2, latent.max_value**2)


@pytest.mark.parametrize("key", ["dense_0", "dense_1", "mu", "score_accum"])
def test_accumulator_left_at_the_narrow_default_would_wrap_and_is_refused(firmware, key):
    emulator, _ = firmware
    config = copy.deepcopy(emulator.config)
    if key == "score_accum":
        config["precision"]["score_accum"] = HLS4ML_MODEL_DEFAULT
        expected = r"score_accum = ap_fixed<16,6> reaches only 31.999.*it would wrap; use at least ap_fixed<47,25>"
    else:
        config["precision"]["layers"][key]["accum"] = HLS4ML_MODEL_DEFAULT
        expected = rf"layer {key}: accumulator ap_fixed<16,6> holds .* use at least ap_fixed<"
    with pytest.raises(PrecisionError, match=expected):
        precision_plan(config, emulator.keras_model)


def test_narrow_accumulator_overflow_is_silent_in_the_arithmetic(firmware):
    """Why the refusal matters: the wrapped sums differ from the exact ones and nothing flags them."""
    from gelato.hls.reference import reference_trace

    emulator, _ = firmware
    trace = reference_trace(emulator.keras_model, emulator.config, edge_events(n_random=200))
    narrow = FixedType.parse(HLS4ML_MODEL_DEFAULT)
    exact = trace["dense_0"]  # full-width accumulator values, every one exact
    wrapped = narrow.quantize(exact)
    overflowing = narrow.saturates(exact)
    assert overflowing.sum() > 100 and np.all(wrapped[overflowing] != exact[overflowing])
    assert np.all(np.abs(wrapped) <= 32)  # no error, no NaN: a plausible-looking wrong value


def test_cli_convert_refuses_a_narrow_accumulator_with_exit_2(tmp_path, capsys):
    import yaml

    from gelato.cli import main

    config = load_hls_config()
    config["precision"]["layers"]["dense_1"]["accum"] = "ap_fixed<23,12>"
    path = tmp_path / "narrow.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main(["convert", "--config", str(path), "--model", "model/default/firmware_model.h5",
                 "--out", str(tmp_path / "build")])  # fmt: skip
    assert code == 2
    assert "layer dense_1: accumulator ap_fixed<23,12>" in capsys.readouterr().err
    assert not (tmp_path / "build").exists()  # refused before anything was generated


def test_8_99_in_a_10_bit_type_with_4_integer_bits_saturates_to_7_984375_not_wraps(tmp_path):
    if shutil.which("g++") is None:
        pytest.skip("g++ not available")
    import hls4ml

    saturating = FixedType.parse("ap_fixed<10,4,AP_RND_CONV,AP_SAT>")
    wrapping = FixedType.parse("ap_fixed<10,4,AP_RND_CONV,AP_WRAP>")
    assert saturating.quantize(np.array([8.99]))[0] == 7.984375
    assert wrapping.quantize(np.array([8.99]))[0] == -7.015625  # the fault: 575 LSB - 1024

    source = ('#include <cstdio>\n#include "ap_fixed.h"\nint main() {\n'
              f'  {saturating} s = 8.99; {wrapping} w = 8.99;\n'
              '  std::printf("%.17g %.17g\\n", s.to_double(), w.to_double());\n}\n')  # fmt: skip
    (tmp_path / "cast.cpp").write_text(source)
    ap_types = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    subprocess.run(["g++", "-std=c++14", f"-I{ap_types}", "cast.cpp", "-o", "cast"], check=True, cwd=tmp_path)
    printed = subprocess.run([str(tmp_path / "cast")], capture_output=True, text=True, check=True).stdout.split()
    assert [float(v) for v in printed] == [7.984375, -7.015625]


def test_score_type_that_wraps_above_its_maximum_is_caught(firmware):
    from gelato.hls.reference import reference_scores

    emulator, _ = firmware
    config = copy.deepcopy(emulator.config)
    config["precision"]["score"] = "ap_ufixed<20,10>"  # wraps at 1024
    with pytest.raises(PrecisionError, match=r"precision.score = ap_ufixed<20,10> reaches only .* it would wrap"):
        precision_plan(config, emulator.keras_model)
    config["precision"]["score"] = "ap_ufixed<20,10,AP_TRN,AP_SAT>"
    with pytest.raises(PrecisionError, match="it would saturate"):
        precision_plan(config, emulator.keras_model)

    # what it would have done: scores above 1024 come back small and pass no threshold
    scores = reference_scores(emulator.keras_model, emulator.config, edge_events(n_random=300))
    above = scores >= 1024
    wrapped = FixedType.parse("ap_ufixed<20,10>").quantize(scores)
    assert above.sum() > 10 and np.all(wrapped[above] < 1024) and np.all(wrapped[above] != scores[above])


def _weights_file(project_dir: Path, name: str, suffix: str) -> np.ndarray:
    text = (project_dir / "firmware" / "weights" / f"{name}{suffix}").read_text()
    if suffix == ".h":
        text = text[text.index("#else") :]
        text = text[text.index("{") + 1 : text.index("}")]
    return np.array([float(v) for v in text.split(",")])


def test_weights_written_into_the_firmware_are_the_ones_emulation_and_reference_use(firmware):
    emulator, _ = firmware
    for layer in emulator.hls_model.get_layers():
        if layer.class_name != "Dense":
            continue
        keras_layer = emulator.keras_model.get_layer(layer.name)
        kernel, bias = keras_layer.get_weights()
        expected = {  # what the reference multiplies with: the QKeras quantizer's fixed-point values
            "weight": quantizer_type(keras_layer.kernel_quantizer_internal).quantize(kernel.astype(np.float64)),
            "bias": quantizer_type(keras_layer.bias_quantizer_internal).quantize(bias.astype(np.float64)),
        }
        for kind, values in expected.items():
            name = layer.weights[kind].name
            text_file = _weights_file(emulator.project_dir, name, ".txt")  # read by emulation and C-simulation
            header = _weights_file(emulator.project_dir, name, ".h")  # compiled in by synthesis
            np.testing.assert_array_equal(text_file, values.ravel(), err_msg=f"{layer.name} {name}.txt")
            np.testing.assert_array_equal(header, values.ravel(), err_msg=f"{layer.name} {name}.h")
            assert not np.array_equal(values, np.asarray(keras_layer.get_weights()[kind == "bias"]))  # quantized


def test_batchnorm_is_folded_once_and_a_separate_batchnorm_layer_is_refused():
    import tensorflow as tf
    from qkeras import QDense

    from gelato.model.firmware import build_firmware_model, load_firmware_model

    trained = load_firmware_model("model/default/firmware_model.h5")
    assert not [layer.name for layer in trained.layers if "BatchNormalization" in type(layer).__name__]

    model = build_firmware_model(SEED_SHIFTS)
    x = model.get_layer("dense_0").output
    x = tf.keras.layers.BatchNormalization(name="bn_0")(x)  # hls4ml would fold (or not) a second time
    x = QDense(2, kernel_quantizer="quantized_bits(8,2,alpha=1)", bias_quantizer="quantized_bits(12,4,alpha=1)",
               name="mu")(x)  # fmt: skip
    with_bn = tf.keras.Model(model.input, tf.keras.layers.Dot(axes=1, name="score")([x, x]))
    with pytest.raises(PrecisionError, match="layer bn_0: BatchNormalization is not part of the GELATO firmware"):
        precision_plan(load_hls_config(), with_bn)


@pytest.mark.parametrize("index, exponent, expected", [
    (0, 15, None),                      # the largest accepted right shift still fits the default types
    (0, 40, "the feature vanishes"),    # 4096 / 2**40 is below the scaled LSB
    (39, -30, "every word saturates"),  # 2**-11 * 2**30 is beyond +-1024
])  # fmt: skip
def test_shift_exponents_that_do_not_fit_the_input_types_are_refused(index, exponent, expected):
    from gelato.hls.config import check_shift_exponents, config_types

    types = config_types(load_hls_config(DEFAULT_CONFIG))
    shifts = list(SEED_SHIFTS)
    shifts[index] = exponent
    if expected is None:
        check_shift_exponents(types["raw_input"], types["scaled_input"], shifts)
        return
    with pytest.raises(PrecisionError, match=rf"shift {index} \(.*\) = {exponent}: .*{expected}"):
        check_shift_exponents(types["raw_input"], types["scaled_input"], shifts)


def test_firmware_exponent_table_swapped_with_another_is_refused(firmware, tmp_path):
    from gelato.hls.extension import verify_generated_shift_table

    emulator, _ = firmware
    header = emulator.project_dir / "firmware" / "parameters.h"
    verify_generated_shift_table(header, emulator.shifts)  # the generated one is the model's

    swapped = list(SEED_SHIFTS)
    swapped[0], swapped[1] = swapped[1], swapped[0]  # jet0 pT and eta exchanged
    tampered = tmp_path / "parameters.h"
    tampered.write_text(header.read_text().replace(", ".join(map(str, SEED_SHIFTS)), ", ".join(map(str, swapped))))
    with pytest.raises(PrecisionError, match=r"shift 0 \(jFexSR_jet0_pt\) is 5 in the firmware but 7 in the model"):
        verify_generated_shift_table(tampered, emulator.shifts)
    with pytest.raises(PrecisionError, match="has 44 entries .* the model has 43"):
        verify_generated_shift_table(tampered, emulator.shifts[:43])


def test_shift_table_file_with_features_in_another_order_is_refused(tmp_path):
    import json

    from gelato.features import FEATURE_NAMES
    from gelato.model.shifts import load_shifts

    names = list(FEATURE_NAMES)
    names[0], names[1] = names[1], names[0]
    path = tmp_path / "shifts.json"
    path.write_text(json.dumps({"shifts": list(SEED_SHIFTS), "feature_names": names}))
    with pytest.raises(ValueError, match="'feature_names' differ"):
        load_shifts(path)
