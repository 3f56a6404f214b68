"""FixedType.quantize against the real ap_fixed cast (g++ with the ap_types headers hls4ml ships)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from gelato.hls.fixedpoint import FixedType, bits_for_range, product_type

TYPES = [
    "ap_fixed<10,4,AP_RND_CONV,AP_SAT>",
    "ap_ufixed<10,4,AP_RND_CONV,AP_SAT>",
    "ap_fixed<8,3>",
    "ap_fixed<6,2,AP_RND,AP_SAT>",
    "ap_fixed<12,5,AP_TRN_ZERO>",
    "ap_ufixed<8,4>",
    "ap_fixed<24,13,AP_RND_CONV,AP_SAT>",
    "ap_ufixed<46,24>",
    "ap_fixed<16,-2,AP_RND_CONV,AP_SAT>",
]

DRIVER = """#include <cstdio>
#include "ap_fixed.h"
template <class T> void emit(double v) {{ T x = v; std::printf("%.17g ", x.to_double()); }}
int main() {{
    double v;
    while (std::scanf("%lf", &v) == 1) {{
{calls}
        std::printf("\\n");
    }}
    return 0;
}}
"""


def ap_types_dir() -> Path:
    import hls4ml

    return Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"


@pytest.fixture(scope="module")
def cast_with_cpp(tmp_path_factory):
    """A function values -> (N, len(TYPES)) array of ap_fixed casts done by compiled C++."""
    if shutil.which("g++") is None:
        pytest.skip("g++ not available")
    work = tmp_path_factory.mktemp("apfixed")
    calls = "\n".join(f"        emit<{t} >(v);" for t in TYPES)
    (work / "cast.cpp").write_text(DRIVER.format(calls=calls))
    subprocess.run(["g++", "-O1", "-std=c++14", f"-I{ap_types_dir()}", "cast.cpp", "-o", "cast"], check=True, cwd=work)

    def cast(values: np.ndarray) -> np.ndarray:
        text = "\n".join(f"{v:.17g}" for v in values)
        out = subprocess.run([str(work / "cast")], input=text, capture_output=True, text=True, check=True).stdout
        return np.array([[float(x) for x in line.split()] for line in out.splitlines()])

    return cast


def edge_values() -> np.ndarray:
    """Ties on every LSB grid used, values at and beyond the limits, negatives, zeros."""
    rng = np.random.default_rng(7)
    ties = np.concatenate([(np.arange(-300, 300) + 0.5) * 2.0**e for e in (-11, -6, -5, -3, 0, 1, 4)])
    limits = np.array([7.984375, 8.0, 8.99, -8.0, -8.01, -9.5, 15.99, 16.0, 4095.9995, 4096.0, -4096.0, -4097.0])
    limits = np.concatenate([limits, [1e6, -1e6]])
    small = np.array([0.0, -0.0, 1e-30, -1e-30, 2.0**-40, -(2.0**-40), 0.25, -0.25, 0.1, -0.1])
    return np.concatenate([ties, limits, small, rng.normal(0, 20, 3000), rng.uniform(-5000, 5000, 1000)])


def test_quantize_equals_ap_fixed_cast_for_every_type_and_edge_value(cast_with_cpp):
    values = edge_values()
    expected = cast_with_cpp(values)
    for column, text in enumerate(TYPES):
        got = FixedType.parse(text).quantize(values)
        differ = np.flatnonzero(got != expected[:, column])
        assert len(differ) == 0, f"{text}: {len(differ)} values differ, first {values[differ[:5]]}"


def test_saturation_clamps_to_largest_value():
    fixed = FixedType.parse("ap_fixed<10,4,AP_RND_CONV,AP_SAT>")
    assert fixed.quantize(np.array([8.99]))[0] == 7.984375
    assert fixed.quantize(np.array([-8.99]))[0] == -8.0
    assert fixed.saturates(np.array([8.99, 7.984375, -8.0, -8.01])).tolist() == [True, False, False, True]


def test_convergent_rounding_sends_ties_to_even_codes():
    fixed = FixedType(8, 4, True, "AP_RND_CONV", "AP_SAT")  # LSB 1/16
    lsb = fixed.lsb
    values = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5]) * lsb
    assert_array_equal(fixed.codes(values), [0, 2, 2, 0, -2, -2])


def test_truncation_floors_negative_values_and_wrap_is_twos_complement():
    fixed = FixedType.parse("ap_fixed<8,3>")  # LSB 1/32, range [-4, 4)
    assert_array_equal(fixed.quantize(np.array([-0.01, 0.01, 4.0, -4.03125])), [-0.03125, 0.0, -4.0, 3.96875])


def test_parse_and_str_round_trip_and_properties():
    for text in TYPES:
        assert FixedType.parse(str(FixedType.parse(text))) == FixedType.parse(text)
    fixed = FixedType.parse("ap_ufixed<46,24>")
    assert (fixed.lsb, fixed.min_value, fixed.max_value) == (2.0**-22, 0.0, 2.0**24 - 2.0**-22)
    assert FixedType.parse("ap_int<8>") == FixedType(8, 8, True)


@pytest.mark.parametrize("text", ["ap_fixed<8>", "ap_fixed<8,3,AP_RND_ZERO>", "ap_fixed<8,3,AP_RND,AP_SAT_SYM>",
                                  "fixed<8,3>", "ap_fixed<80,3>", "ap_fixed<8,3,AP_RND,AP_SAT,2>"])
def test_parse_refuses_unsupported_types(text):
    with pytest.raises(ValueError):
        FixedType.parse(text)


def test_product_type_and_narrowest_range_type():
    assert product_type(FixedType.parse("ap_ufixed<10,4>"), FixedType.parse("ap_fixed<8,3>")) == FixedType(18, 7, True)
    fitted = bits_for_range(-2064.0, 2063.0, 11, signed=True)
    assert fitted == FixedType(24, 13, True)
    assert fitted.min_value <= -2064 and bits_for_range(-2048.0, 2047.0, 11, True) == FixedType(23, 12, True)
