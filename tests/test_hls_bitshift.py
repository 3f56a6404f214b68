"""The bit-shift layer: C++ header vs numpy twin, and the hls4ml registration."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from gelato.features import SEED_SHIFTS
from gelato.hls.extension import HEADER, shift_input_words, shift_type
from gelato.hls.fixedpoint import FixedType

RAW = FixedType.parse("ap_fixed<24,13,AP_RND_CONV,AP_SAT>")
SCALED = FixedType.parse("ap_fixed<24,10,AP_RND_CONV,AP_SAT>")
NARROW = FixedType.parse("ap_fixed<12,4,AP_RND_CONV,AP_SAT>")  # rounds and saturates a lot
TEST_SHIFTS = [7, 5, 0, -1, -2, 3, 1, 6]

DRIVER = """#include <cstdio>
#include "nnet_bitshift.h"
typedef {raw} raw_t;
typedef {scaled} scaled_t;
struct test_config : nnet::bitshift_config {{
    static const unsigned n_in = {n_in};
    static const unsigned max_right_shift = {right};
    static const unsigned max_left_shift = {left};
    typedef {wide} shift_t;
    static int shift(unsigned i) {{
        static const int exponents[{n_in}] = {{{table}}};
        return exponents[i];
    }}
}};
int main() {{
    float value;
    raw_t in[{n_in}];
    scaled_t out[{n_in}];
    unsigned i = 0;
    while (std::scanf("%f", &value) == 1) {{
        in[i++] = value;
        if (i == {n_in}) {{
            nnet::bitshift_scale<raw_t, scaled_t, test_config>(in, out);
            for (unsigned j = 0; j < {n_in}; j++) std::printf("%.17g ", out[j].to_double());
            std::printf("\\n");
            i = 0;
        }}
    }}
    return 0;
}}
"""


def compile_driver(work: Path, shifts: list[int], scaled: FixedType) -> Path:
    import hls4ml

    templates = Path(hls4ml.__file__).parent / "templates" / "vivado"
    source = DRIVER.format(raw=RAW, scaled=scaled, n_in=len(shifts), right=max(0, max(shifts)),
                           left=max(0, -min(shifts)), wide=shift_type(RAW, shifts), table=", ".join(map(str, shifts)))
    (work / "shift.cpp").write_text(source)
    includes = [f"-I{templates / 'ap_types'}", f"-I{templates / 'nnet_utils'}", f"-I{HEADER.parent}"]
    subprocess.run(["g++", "-O1", "-std=c++14", *includes, "shift.cpp", "-o", "shift"], check=True, cwd=work)
    return work / "shift"


def run_driver(binary: Path, features: np.ndarray) -> np.ndarray:
    text = "\n".join(" ".join(f"{v:.9g}" for v in row) for row in features.astype(np.float32))
    out = subprocess.run([str(binary)], input=text, capture_output=True, text=True, check=True).stdout
    return np.array([[float(x) for x in line.split()] for line in out.splitlines()])


def edge_features(n_columns: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    special = np.array([0.0, RAW.lsb, -RAW.lsb, 1.5 * RAW.lsb, 2.5 * RAW.lsb, -2.5 * RAW.lsb, 0.049087385, -3.0925052,
                        4095.9995, 4096.0, -4096.0, -5000.0, 1e6, 130.0, 128.0, -129.0, 511.99, 600.0, 0.25, 1130.75])
    columns = [np.roll(special, k) for k in range(n_columns)]
    edges = np.stack(columns, axis=1)
    return np.concatenate([edges, rng.normal(0, 50, (500, n_columns))]).astype(np.float32)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("g++ not available")
    return tmp_path_factory.mktemp("bitshift")


@pytest.mark.parametrize("scaled", [SCALED, NARROW], ids=["default", "narrow"])
def test_header_matches_numpy_twin_on_edge_values_and_negative_shifts(work, scaled):
    binary = compile_driver(work, TEST_SHIFTS, scaled)
    features = edge_features(len(TEST_SHIFTS))
    expected = shift_input_words(features, RAW, scaled, TEST_SHIFTS)
    got = run_driver(binary, features)
    differ = np.argwhere(got != expected)
    assert len(differ) == 0, f"{len(differ)} words differ, first (event, feature): {differ[:5].tolist()}"


def test_shift_keeps_every_input_lsb_before_the_final_cast():
    words = RAW.quantize(np.array([RAW.lsb, -RAW.lsb, 3 * RAW.lsb]))
    wide = shift_type(RAW, SEED_SHIFTS)
    shifted = np.ldexp(words, -max(SEED_SHIFTS))
    assert_array_equal(wide.quantize(shifted), shifted)  # exact in the wide type
    assert wide.contains(RAW) and wide.lsb == RAW.lsb * 2.0 ** -max(SEED_SHIFTS)
    assert wide.max_value >= RAW.max_value * 2.0 ** -min(SEED_SHIFTS)


def test_negative_exponent_is_a_left_shift():
    out = shift_input_words(np.array([[3.0, 3.0, 3.0]]), RAW, SCALED, [-2, 0, 2])
    assert_array_equal(out, [[12.0, 3.0, 0.75]])


def test_default_types_hold_realistic_values_after_every_seed_shift():
    """Jets, taus and MET up to 2 TeV, muons 0-2 up to 1 TeV, muon3 up to 100 GeV, any angle."""
    from gelato.features import FEATURE_NAMES
    from gelato.hls.config import config_types, load_hls_config

    types = config_types(load_hls_config())
    raw, scaled = types["raw_input"], types["scaled_input"]
    realistic = {"muon3_pt": 100.0, "muon0_pt": 1000.0, "muon1_pt": 1000.0, "muon2_pt": 1000.0}
    for name, shift in zip(FEATURE_NAMES, SEED_SHIFTS):
        largest = realistic.get(name, 2000.0) if name.endswith("_pt") else 2 * np.pi
        assert raw.max_value >= largest, name
        assert scaled.max_value >= largest * 2.0**-shift, name
    assert raw.lsb <= 0.025 / 8  # the eFEX eta step (0.025) keeps its granularity
