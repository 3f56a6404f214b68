"""Conversion to hls4ml: the bit-shift layer is emitted for both backends, types are kept as given."""

from __future__ import annotations

import copy

import pytest
import yaml

from gelato.features import SEED_SHIFTS
from gelato.hls.config import DEFAULT_CONFIG, load_hls_config


@pytest.fixture(scope="module")
def keras_model():
    from gelato.model.firmware import build_firmware_model

    return build_firmware_model(SEED_SHIFTS)


@pytest.mark.parametrize("backend", ["Vitis", "Vivado"])
def test_project_has_one_top_function_from_raw_words_to_score(keras_model, backend, tmp_path):
    import hls4ml

    from gelato.hls.convert import verify_types, hls4ml_settings, precision_plan
    from gelato.hls.extension import register_bitshift_extension

    config = load_hls_config(DEFAULT_CONFIG)
    plan = precision_plan(config, keras_model)
    register_bitshift_extension()
    register_bitshift_extension()  # idempotent
    hls_model = hls4ml.converters.convert_from_keras_model(
        keras_model, hls_config=hls4ml_settings(config, plan), output_dir=str(tmp_path / "prj"),
        project_name="gelato_l1ad", backend=backend, part=config["part"], io_type="io_parallel",
    )  # fmt: skip
    verify_types(hls_model, plan)
    hls_model.write()

    firmware = tmp_path / "prj" / "firmware"
    top = (firmware / "gelato_l1ad.cpp").read_text()
    lines = [line.strip() for line in top.splitlines()]
    calls = [line for line in lines if line.startswith("nnet::") and "load_weights" not in line]
    assert [c.split("<")[0] for c in calls] == [
        "nnet::bitshift_scale", "nnet::dense", "nnet::relu", "nnet::dense", "nnet::relu", "nnet::dense", "nnet::dot1d"
    ]
    assert "input_t l1_objects[44]" in top
    parameters = (firmware / "parameters.h").read_text()
    assert "struct config2 : nnet::bitshift_config" in parameters and "typedef ap_fixed<33,15> shift_t;" in parameters
    assert "{" + ", ".join(str(s) for s in SEED_SHIFTS) + "}" in parameters
    assert (firmware / "nnet_utils" / "nnet_bitshift.h").exists()
    defines = (firmware / "defines.h").read_text()
    assert "typedef ap_fixed<24,13,AP_RND_CONV,AP_SAT,0> input_t;" in defines
    assert "typedef ap_ufixed<46,24> result_t;" in defines and "typedef ap_fixed<47,25> score_accum_t;" in defines


def test_fingerprint_changes_with_the_config(tmp_path):
    from gelato.hls.convert import build_fingerprint

    model = tmp_path / "model.h5"
    model.write_bytes(b"weights")
    config = load_hls_config(DEFAULT_CONFIG)
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(yaml.safe_dump(config))
    changed = copy.deepcopy(config)
    changed["clock_period_ns"] = 5.0
    second.write_text(yaml.safe_dump(changed))
    assert build_fingerprint(model, first) == build_fingerprint(model, first)
    assert build_fingerprint(model, first) != build_fingerprint(model, second)


def test_patch_testbench_makes_results_print_every_digit(tmp_path):
    from gelato.hls.convert import TESTBENCH_ANCHOR, patch_testbench

    testbench = tmp_path / "top_test.cpp"
    testbench.write_text(f"int main() {{\n    {TESTBENCH_ANCHOR}\n}}\n")
    patch_testbench(tmp_path, "top")
    patch_testbench(tmp_path, "top")  # once only
    assert testbench.read_text().count("fout.precision(80);") == 1
    testbench.write_text("int main() {}\n")
    with pytest.raises(RuntimeError, match="not found"):
        patch_testbench(tmp_path, "top")
