"""The fast scorer's generator: its C++ casts round like ap_fixed, and what it cannot model is refused."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from gelato.hls.fastkernel import (
    INPUT_CONFIG, ROUNDING, TEMPLATE, Codes, FastKernelRefused, KernelWriter, _round_code,
)
from gelato.hls.fixedpoint import FixedType

TARGET = "ap_fixed<4,2,{rounding},AP_SAT>"  # codes -8..7, 2 fraction bits
SOURCE_FRACTION = 5  # three more than the target: every eighth code is a tie


def _cast_library(tmp_path, arithmetic: str):
    """The template's cast_codes for every rounding mode, compiled with g++ behind extern "C" functions."""
    casts, functions = [], []
    for mode in ROUNDING.values():
        casts.append(f"struct cast_{mode} {{ static const unsigned n = 1; static constexpr double scale = 0.125;\n"
                     f"    static const int rounding = {mode}; static const bool saturate = true;\n"
                     f"    static constexpr double min_code = -8.0, max_code = 7.0; }};")
        functions.append(f'extern "C" void test_{mode}({arithmetic} *codes) {{\n'
                         f"    gelato_fast::cast_codes<{arithmetic}, gelato_fast::cast_{mode}>"
                         f"(reinterpret_cast<{arithmetic} (*)[gelato_fast::lanes]>(codes));\n}}")
    input_config = INPUT_CONFIG.format(n_features=1, raw="ap_fixed<8,4>", raw_scale="16.0", raw_rounding="trn",
                                       raw_min="-128.0", raw_max="127.0", shift_scales="1.0", scaled="ap_fixed<8,4>",
                                       scaled_rounding="trn", scaled_min="-128.0", scaled_max="127.0")
    config = input_config + "\n".join(casts)
    body = "    (void)features;\n    std::fill(scores, scores + lanes, 0.0);"
    source = TEMPLATE.read_text().replace("@CONFIG@", config).replace("@LAYERS@", body) + "\n".join(functions)
    (tmp_path / "casts.cpp").write_text(source)
    command = [shutil.which("g++"), "-O3", "-march=native", "-std=c++17", "-fPIC", "-shared", "-pthread",
               "casts.cpp", "-o", "casts.so"]
    built = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert built.returncode == 0, f"g++ failed on the template's casts:\n{built.stderr[-3000:]}"
    return ctypes.CDLL(str(tmp_path / "casts.so"))


@pytest.mark.parametrize("arithmetic", ["double", "float"])
def test_cpp_casts_round_and_saturate_like_ap_fixed_in_every_mode(tmp_path, arithmetic):
    library = _cast_library(tmp_path, arithmetic)
    codes = np.arange(-96, 96)  # ties (every code = 4 mod 8), both signs, beyond -8..7 on both sides
    dtype = np.float64 if arithmetic == "double" else np.float32
    for rounding, mode in ROUNDING.items():
        data = codes.astype(dtype)
        for start in range(0, len(data), 16):  # one tile row of 16 lanes per call
            getattr(library, f"test_{mode}")(data[start:].ctypes.data_as(ctypes.c_void_p))
        expected = FixedType.parse(TARGET.format(rounding=rounding)).codes(np.ldexp(codes, -SOURCE_FRACTION))
        np.testing.assert_array_equal(data, expected, err_msg=f"{rounding} in {arithmetic}")


@pytest.mark.parametrize("rounding", list(ROUNDING))
def test_range_proofs_round_like_fixed_type(rounding):
    values = np.ldexp(np.arange(-40, 41), -3)
    expected = FixedType(20, 10, True, rounding, "AP_SAT").codes(values * 2.0**-10)
    np.testing.assert_array_equal([_round_code(v, rounding) for v in values], expected)


def test_a_cast_that_would_wrap_is_refused_naming_range_and_type():
    writer = KernelWriter()
    codes = Codes(fractional=19, low=-(2**37), high=2**37 - 1, arithmetic="double", array="dense_0", size=32)
    message = (r"dense_0_result: values reach \[-262144.0, 262143.99999809265\], outside ap_fixed<30,11>, "
               r"which wraps \(AP_WRAP\); the fast scorer models saturation only")
    with pytest.raises(FastKernelRefused, match=message):
        writer._cast("dense_0_result", codes, FixedType.parse("ap_fixed<30,11>"))


def test_a_saturating_cast_is_emitted_as_a_clamp_and_narrows_the_range():
    writer = KernelWriter()
    codes = Codes(fractional=19, low=-(2**37), high=2**37 - 1, arithmetic="double", array="dense_0", size=32)
    cast = writer._cast("relu_0", codes, FixedType.parse("ap_ufixed<10,4,AP_RND_CONV,AP_SAT>"))
    assert (cast.low, cast.high, cast.fractional) == (0, 1023, 6)
    assert "static const bool saturate = true;" in writer.config[-1]
    assert writer.layers[-1] == "    cast_codes<double, relu_0_cast>(dense_0);"


def test_an_identity_cast_emits_nothing():
    writer = KernelWriter()
    codes = Codes(fractional=11, low=-(2**22), high=2**22 - 1, arithmetic="float", array="mu", size=3)
    assert writer._cast("mu_result", codes, FixedType.parse("ap_fixed<23,12>")) == codes
    assert writer.config == [] and writer.layers == []


def test_codes_beyond_exact_double_arithmetic_are_refused():
    with pytest.raises(FastKernelRefused, match=r"layer wide: codes reach 4503599627370496 \(2\*\*52.0\), beyond "
                                                r"2\*\*51 where double arithmetic stops being exact"):
        KernelWriter._arithmetic("wide", 2**52)
    assert KernelWriter._arithmetic("narrow", 2**23) == "float"
    assert KernelWriter._arithmetic("medium", 2**23 + 1) == "double"
