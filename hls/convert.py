"""Firmware Keras model + YAML config -> compiled hls4ml project (``gelato convert``).

This module belongs to the hls stage.  It

1. proves the config's types against the model (:func:`precision_plan`: every dense
   accumulator at a width that cannot overflow, the relu types equal to the QKeras
   quantizers, the score types wide enough for any latent mean);
2. writes them into an hls4ml configuration where every type is explicit
   (:func:`hls4ml_settings`), converts with the bit-shift extension registered, and
   checks that hls4ml kept each type as given;
3. writes the project into ``<out>/<project_name>/``, patches the testbench so it prints
   results with every digit, and compiles the C++ emulation library with g++; checks
   that the exponent table written into the firmware is the model's, feature by feature;
4. records the SHA-256 of model, config, header and the hls4ml version in
   ``gelato_build.json`` so the next run reuses the compiled library when nothing changed.

Running the compiled model lives in :mod:`gelato.hls.emulate`, the testbench in
:mod:`gelato.hls.csim`, vendor synthesis in :mod:`gelato.hls.synth`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gelato.hls.config import (
    DenseSpec,
    PrecisionError,
    check_dense_accumulator,
    check_input_types,
    check_relu_type,
    check_score_types,
    config_types,
    file_digest,
    load_hls_config,
)
from gelato.hls.batch import LIBRARY as BATCH_LIBRARY
from gelato.hls.batch import build_batch_library
from gelato.hls.extension import (
    HEADER,
    from_hls4ml_precision,
    register_bitshift_extension,
    verify_generated_shift_table,
)
from gelato.hls.fixedpoint import FixedType

log = logging.getLogger(__name__)

BUILD_STAMP = "gelato_build.json"
TESTBENCH_ANCHOR = "std::ofstream fout(RESULTS_LOG);"
TESTBENCH_PATCH = TESTBENCH_ANCHOR + "\n    fout.precision(80); // GELATO: print fixed-point results with every digit"


@dataclass
class PrecisionPlan:
    """Every type of the firmware, by hls4ml layer name and kind ('result', 'accum')."""

    layer_types: dict[str, dict[str, FixedType]] = field(default_factory=dict)
    dense: list[DenseSpec] = field(default_factory=list)
    shifts: list[int] = field(default_factory=list)


def quantizer_type(quantizer) -> FixedType:
    """The ap_fixed type a QKeras quantizer produces (as hls4ml maps it)."""
    name = type(quantizer).__name__
    if name == "quantized_bits":
        if quantizer.alpha not in (None, 1, 1.0):
            raise PrecisionError(f"{quantizer}: only alpha=1 has a fixed-point twin; got alpha={quantizer.alpha}")
        signed = bool(quantizer.keep_negative)
        return FixedType(int(quantizer.bits), int(quantizer.integer) + int(signed), signed, "AP_RND_CONV", "AP_SAT")
    if name == "quantized_relu":
        if quantizer.negative_slope or quantizer.use_sigmoid:
            raise PrecisionError(f"{quantizer}: only a plain quantized_relu(bits, integer) is supported")
        return FixedType(int(quantizer.bits), int(quantizer.integer), False, "AP_RND_CONV", "AP_SAT")
    raise PrecisionError(f"quantizer {quantizer} has no supported fixed-point twin (quantized_bits, quantized_relu)")


def _layer_entry(config: dict, name: str, kind: str, source: str) -> FixedType:
    entry = config["precision"]["layers"].get(name, {})
    if kind not in entry:
        raise PrecisionError(f"{source}: precision.layers.{name}.{kind} is missing; every {kind} type must be given")
    return FixedType.parse(entry[kind])


def precision_plan(config: dict, keras_model, source: str = "<config>") -> PrecisionPlan:
    """Walk the firmware model, check every type of ``config`` and return the full plan."""
    types = config_types(config)
    plan = PrecisionPlan()
    current = types["scaled_input"]
    latent = None
    last_dense = [layer.name for layer in keras_model.layers if type(layer).__name__ == "QDense"][-1]

    for layer in keras_model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            plan.layer_types[layer.name] = {"result": types["raw_input"]}
        elif kind == "BitShiftScaling":
            plan.shifts = list(layer.shifts)
            check_input_types(types["raw_input"], types["scaled_input"], plan.shifts)
            plan.layer_types[layer.name] = {"result": types["scaled_input"]}
        elif kind == "QDense":
            weight_type = quantizer_type(layer.kernel_quantizer_internal)
            bias_type = quantizer_type(layer.bias_quantizer_internal)
            spec = DenseSpec(layer.name, int(layer.input_shape[-1]), current, weight_type, bias_type)
            accum = _layer_entry(config, layer.name, "accum", source)
            check_dense_accumulator(spec, accum)
            if layer.name == last_dense:
                result = types["latent_mean"]
            else:
                result = _layer_entry(config, layer.name, "result", source)
            plan.dense.append(spec)
            plan.layer_types[layer.name] = {"accum": accum, "result": result}
            # hls4ml may keep a pass-through linear activation after a QDense: same type, no rounding
            plan.layer_types[f"{layer.name}_linear"] = {"result": result}
            current = latent = result
        elif kind == "QActivation":
            relu = quantizer_type(layer.quantizer)
            check_relu_type(layer.name, relu, _layer_entry(config, layer.name, "result", source))
            plan.layer_types[layer.name] = {"result": relu}
            current = relu
        elif kind == "Dot":
            n_latent = int(layer.input_shape[0][-1])
            check_score_types(latent, types["score_accum"], types["score"], n_latent)
            plan.layer_types[layer.name] = {"accum": types["score_accum"], "result": types["score"]}
        else:
            raise PrecisionError(f"layer {layer.name}: {kind} is not part of the GELATO firmware graph")

    unknown = sorted(set(config["precision"]["layers"]) - set(plan.layer_types))
    if unknown:
        raise PrecisionError(f"{source}: precision.layers names {', '.join(unknown)}, which the model does not have; "
                             f"its layers are {', '.join(plan.layer_types)}")
    return plan


def hls4ml_settings(config: dict, plan: PrecisionPlan, trace: bool = False) -> dict:
    """The hls4ml ``hls_config`` dict: every layer's accum and result type explicit.

    ``trace=True`` asks hls4ml to save every layer's output (for :mod:`gelato.hls.trace`).
    """
    layer_names = {
        name: {"Precision": {kind: str(fixed) for kind, fixed in kinds.items()}, "Trace": trace}
        for name, kinds in plan.layer_types.items()
    }
    return {
        "Model": {
            "Precision": "ap_fixed<16,6>",  # never used: every layer below is explicit
            "ReuseFactor": int(config["reuse_factor"]),
            "Strategy": config["strategy"],
            "TraceOutput": False,
        },
        "LayerName": layer_names,
    }


def verify_types(hls_model, plan: PrecisionPlan) -> None:
    """Fail if hls4ml changed any type we set (an optimizer pass or a fallback default)."""
    for layer in hls_model.get_layers():
        if layer.name.endswith("_linear") and layer.get_attr("activation") != "linear":
            activation = layer.get_attr("activation")
            raise PrecisionError(f"hls4ml layer {layer.name} is a {activation}, not a linear pass-through")
        expected = plan.layer_types.get(layer.name)
        if expected is None:
            raise PrecisionError(f"hls4ml added layer {layer.name} ({layer.class_name}) that the plan does not know")
        actual = from_hls4ml_precision(layer.get_output_variable().type.precision)
        if actual != expected["result"]:
            wanted = expected["result"]
            raise PrecisionError(f"hls4ml gave layer {layer.name} result {actual}; the config says {wanted}")
        accum = layer.get_attr("accum_t")
        if "accum" in expected and from_hls4ml_precision(accum.precision) != expected["accum"]:
            given = from_hls4ml_precision(accum.precision)
            raise PrecisionError(f"hls4ml gave layer {layer.name} accum {given}; the config says {expected['accum']}")


@contextlib.contextmanager
def build_lock(project_dir: Path) -> Iterator[None]:
    """Serialise work in one project directory across processes (conversion, C-simulation)."""
    project_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(project_dir.parent / f".{project_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_fingerprint(model_path: Path, config_path: Path) -> dict:
    """What a compiled build depends on: model, config, our header and modules, hls4ml version."""
    import hls4ml

    here = Path(__file__).parent
    return {
        "model_sha256": file_digest(model_path),
        "config_sha256": file_digest(config_path),
        "header_sha256": file_digest(HEADER),
        "code_sha256": {name: file_digest(here / name)
                        for name in ("extension.py", "convert.py", "config.py", "batch.py", "templates/gelato_batch.cpp")},
        "hls4ml_version": hls4ml.__version__,
    }


def patch_testbench(project_dir: Path, project_name: str) -> None:
    """Make the generated testbench print results exactly (ap_fixed prints 6 digits by default)."""
    testbench = project_dir / f"{project_name}_test.cpp"
    text = testbench.read_text()
    if TESTBENCH_PATCH in text:
        return
    if TESTBENCH_ANCHOR not in text:
        raise RuntimeError(f"{testbench}: line {TESTBENCH_ANCHOR!r} not found; the hls4ml testbench changed")
    testbench.write_text(text.replace(TESTBENCH_ANCHOR, TESTBENCH_PATCH, 1))


def top_function_signature(hls_model) -> str:
    """The C++ prototype of the generated top function, e.g. for logs and docs."""
    arguments = [
        f"{var.type.name} {var.name}[{var.size()}]"
        for var in [*hls_model.get_input_variables(), *hls_model.get_output_variables()]
    ]
    return f"void {hls_model.config.get_project_name()}({', '.join(arguments)})"


@dataclass
class ConvertedProject:
    """A converted and compiled firmware project."""

    hls_model: object
    keras_model: object
    config: dict
    plan: PrecisionPlan
    project_dir: Path
    reused: bool
    seconds: float

    @property
    def batch_library(self) -> Path:
        """The compiled batch driver (see :mod:`gelato.hls.batch`)."""
        return self.project_dir / BATCH_LIBRARY


def convert_firmware(model_path: Path, config_path: Path, out_root: Path) -> ConvertedProject:
    """Convert and compile (or reuse a matching compiled build); see the module docstring."""
    import hls4ml

    from gelato.model.firmware import load_firmware_model

    start = time.perf_counter()
    config = load_hls_config(config_path)
    keras_model = load_firmware_model(model_path)
    plan = precision_plan(config, keras_model, str(config_path))
    register_bitshift_extension()

    project_dir = Path(out_root).resolve() / config["project_name"]
    with build_lock(project_dir):
        hls_model = hls4ml.converters.convert_from_keras_model(
            keras_model, hls_config=hls4ml_settings(config, plan), output_dir=str(project_dir),
            project_name=config["project_name"], backend=config["backend"], part=config["part"],
            clock_period=config["clock_period_ns"], io_type=config["io_type"],
        )  # fmt: skip
        verify_types(hls_model, plan)
        fingerprint = build_fingerprint(Path(model_path), Path(config_path))
        reused = _load_matching_build(hls_model, project_dir, fingerprint)
        if not reused:
            _write_and_compile(hls_model, project_dir, config["project_name"], fingerprint)
        verify_generated_shift_table(project_dir / "firmware" / "parameters.h", plan.shifts)

    seconds = time.perf_counter() - start
    log.info("%s %s in %.1f s", "reused compiled build" if reused else "converted and compiled", project_dir, seconds)
    return ConvertedProject(hls_model, keras_model, config, plan, project_dir, reused, seconds)


def _load_matching_build(hls_model, project_dir: Path, fingerprint: dict) -> bool:
    stamp = project_dir / BUILD_STAMP
    if not stamp.exists():
        return False
    recorded = json.loads(stamp.read_text())
    library = project_dir / recorded.get("library", "")
    libraries_present = library.is_file() and (project_dir / BATCH_LIBRARY).is_file()
    if recorded.get("fingerprint") != fingerprint or not libraries_present:
        log.info("%s: model, config or code changed since the last build; recompiling", project_dir)
        return False
    hls_model._top_function_lib = ctypes.cdll.LoadLibrary(str(library))
    return True


def _write_and_compile(hls_model, project_dir: Path, project_name: str, fingerprint: dict) -> None:
    stamp = project_dir / BUILD_STAMP
    stamp.unlink(missing_ok=True)
    (project_dir / BATCH_LIBRARY).unlink(missing_ok=True)
    for old in (project_dir / "firmware").glob(f"{project_name}-*.so"):
        old.unlink()

    hls_model.write()
    patch_testbench(project_dir, project_name)
    log.info("compiling the C++ emulation libraries with g++ (tens of seconds)")
    hls_model._compile()

    library = next((project_dir / "firmware").glob(f"{project_name}-*.so"))
    n_in = hls_model.get_input_variables()[0].size()
    n_out = hls_model.get_output_variables()[0].size()
    build_batch_library(project_dir, project_name, int(n_in), int(n_out))
    record = {"fingerprint": fingerprint, "library": str(library.relative_to(project_dir))}
    tmp = stamp.with_suffix(".part")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, stamp)
