"""The hls YAML config: schema validation that names the key, and the overflow proofs."""

from __future__ import annotations

import copy

import pytest
import yaml

from gelato.hls.config import (
    DEFAULT_CONFIG,
    DenseSpec,
    PrecisionError,
    check_dense_accumulator,
    check_relu_type,
    check_score_types,
    full_width_accumulator,
    load_hls_config,
    validate_hls_config,
)
from gelato.hls.fixedpoint import FixedType

X = FixedType.parse("ap_ufixed<10,4,AP_RND_CONV,AP_SAT>")
W = FixedType.parse("ap_fixed<8,3>")
B = FixedType.parse("ap_fixed<12,5>")


@pytest.fixture
def default() -> dict:
    return load_hls_config(DEFAULT_CONFIG)


def test_default_config_is_valid_and_names_the_l1topo_part(default):
    assert default["backend"] == "Vitis" and default["part"] == "xcvu9p-flgb2104-2-e"
    assert default["latency_budget_bx"] == 2 and default["io_type"] == "io_parallel"
    assert default["strategy"] == "Latency"


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda c: c.update(backend="Quartus"), "backend"),
        (lambda c: c.update(clock_period_ns=-1), "clock_period_ns"),
        (lambda c: c["precision"].update(score="float"), "precision.score"),
        (lambda c: c["precision"].pop("score_accum"), "precision"),
        (lambda c: c["precision"]["layers"]["dense_0"].update(accum="ap_fixed<37>"),
         "precision.layers.dense_0.accum"),
        (lambda c: c.update(reuse_factor=0), "reuse_factor"),
        (lambda c: c.update(colour="blue"), "(top level)"),
    ],
)
def test_schema_violation_names_the_key(default, edit, key, tmp_path):
    config = copy.deepcopy(default)
    edit(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError) as err:
        load_hls_config(path)
    assert str(path) in str(err.value) and f"{key}:" in str(err.value)


def test_missing_dot_accumulator_is_reported_by_name(default):
    config = copy.deepcopy(default)
    del config["precision"]["score_accum"]
    with pytest.raises(ValueError, match="'score_accum' is a required property"):
        validate_hls_config(config)


def test_full_width_accumulator_includes_the_bias_term():
    spec = DenseSpec("dense_1", 32, X, W, B)
    # 32 products in (-64, 64) plus a bias in [-16, 16): one bit more than 10+8+ceil(log2 32) gives
    assert full_width_accumulator(spec) == FixedType(24, 13, True)
    check_dense_accumulator(spec, FixedType(24, 13, True))


def test_accumulator_that_can_overflow_is_refused():
    spec = DenseSpec("dense_1", 32, X, W, B)
    expected = r"layer dense_1: accumulator ap_fixed<23,12>.*use at least ap_fixed<24,13>"
    with pytest.raises(PrecisionError, match=expected):
        check_dense_accumulator(spec, FixedType(23, 12, True))


def test_score_types_that_can_wrap_or_saturate_are_refused():
    latent = FixedType.parse("ap_fixed<23,12>")
    check_score_types(latent, FixedType.parse("ap_fixed<47,25>"), FixedType.parse("ap_ufixed<46,24>"), 3)
    with pytest.raises(PrecisionError, match="score_accum = ap_fixed<46,24>.*wrap"):
        check_score_types(latent, FixedType.parse("ap_fixed<46,24>"), FixedType.parse("ap_ufixed<46,24>"), 3)
    with pytest.raises(PrecisionError, match="score = ap_ufixed<30,16,AP_RND_CONV,AP_SAT>.*saturate"):
        check_score_types(latent, FixedType.parse("ap_fixed<47,25>"),
                          FixedType.parse("ap_ufixed<30,16,AP_RND_CONV,AP_SAT>"), 3)


def test_relu_type_must_equal_the_qkeras_quantizer():
    check_relu_type("relu_0", X, X)
    with pytest.raises(PrecisionError, match="relu_0"):
        check_relu_type("relu_0", X, FixedType.parse("ap_ufixed<10,4>"))


def test_default_config_passes_every_proof_for_the_firmware_model(default):
    from gelato.features import SEED_SHIFTS
    from gelato.hls.convert import precision_plan
    from gelato.model.firmware import build_firmware_model

    plan = precision_plan(default, build_firmware_model(SEED_SHIFTS))
    assert [spec.name for spec in plan.dense] == ["dense_0", "dense_1", "mu"]
    for spec in plan.dense:  # defaults are exactly the full-width accumulators
        assert plan.layer_types[spec.name]["accum"] == full_width_accumulator(spec)
    assert plan.shifts == list(SEED_SHIFTS)


def test_layer_name_the_model_does_not_have_is_refused(default):
    from gelato.features import SEED_SHIFTS
    from gelato.hls.convert import precision_plan
    from gelato.model.firmware import build_firmware_model

    config = copy.deepcopy(default)
    config["precision"]["layers"]["dense_2"] = {"accum": "ap_fixed<30,16>"}
    with pytest.raises(PrecisionError, match="precision.layers names dense_2"):
        precision_plan(config, build_firmware_model(SEED_SHIFTS))


def test_narrow_accumulator_in_yaml_is_refused_for_the_firmware_model(default):
    from gelato.features import SEED_SHIFTS
    from gelato.hls.convert import precision_plan
    from gelato.model.firmware import build_firmware_model

    config = copy.deepcopy(default)
    config["precision"]["layers"]["dense_0"]["accum"] = "ap_fixed<30,16>"
    with pytest.raises(PrecisionError, match="layer dense_0: accumulator ap_fixed<30,16>"):
        precision_plan(config, build_firmware_model(SEED_SHIFTS))
