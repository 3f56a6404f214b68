"""Bit-accurate scores from the compiled hls4ml project: :class:`FirmwareEmulator`.

This module belongs to the hls stage and is what the calibration stage calls.  The
emulator converts the firmware Keras model with the YAML config (reusing a compiled
build when model and config are unchanged, see :mod:`gelato.hls.convert`) and scores
events bit-accurately in one of two ways (``method`` of :meth:`FirmwareEmulator.emulated_scores`):

* ``"fast"``: the fused kernel of :mod:`gelato.hls.fastscore`, the firmware's arithmetic on
  native types in several threads, generated from the same hls4ml model and proven exact for
  its types (or refused, with the reason);
* ``"ap_fixed"``: the very C++ that becomes the firmware, compiled with g++, through a batch
  driver (many events per call; inputs as float64 copies of the float32 features, so the C++
  casts the same number the g++ testbench reads from its text file).

``"auto"`` (the default) is the fast kernel, or the ap_fixed driver when the fast kernel
refused this configuration.  hls4ml's own one-event-per-call ``predict`` stays available as
:meth:`FirmwareEmulator.hls4ml_scores`; tests require all three to agree on every event.

It also gives the float (TensorFlow) scores of the same Keras model, and counts, per
feature, the events whose raw input word or scaled model-input word saturates.
What a threshold means (``score > threshold`` or ``>=``) is the calibration stage's rule.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from gelato.features import N_FEATURES
from gelato.hls.batch import BatchRunner
from gelato.hls.config import config_types
from gelato.hls.convert import convert_firmware
from gelato.hls.extension import shift_input_words
from gelato.hls.fastkernel import FastKernelRefused
from gelato.hls.fastscore import FAST_DIR, FastScorer
from gelato.hls.fixedpoint import FixedType

log = logging.getLogger(__name__)

#: Batch sizes of the compiled float model.  XLA keeps buffers for a whole batch: measured
#: here, 65536 events cost 111 MB of resident memory and 16384 events 57 MB, at the same
#: speed (14 ms per 131,072 events either way).
FLOAT_BATCH = 16384
FLOAT_TAIL_BATCH = 4096
EMULATION_BLOCK = 1 << 20
METHODS = ("auto", "fast", "ap_fixed")


def _checked_features(features: np.ndarray, check_finite: bool = True) -> np.ndarray:
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[1] != N_FEATURES:
        raise ValueError(f"features must have shape (N, {N_FEATURES}), got {features.shape}")
    if check_finite and not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinite values; the firmware input words cannot hold them")
    return features.astype(np.float32, copy=False)


class FirmwareEmulator:
    """The compiled firmware (bit-accurate) and its float Keras twin, side by side.

    ``threads`` is the fast scorer's thread count (default: the cores this process may use).
    """

    def __init__(self, model_path: Path, config_path: Path, build_dir: Path, threads: int | None = None):
        project = convert_firmware(Path(model_path), Path(config_path), Path(build_dir))
        self.project = project
        self.keras_model = project.keras_model
        self.hls_model = project.hls_model
        self.config: dict = project.config
        self.project_dir: Path = project.project_dir
        self.shifts: list[int] = list(project.plan.shifts)

        types = config_types(self.config)
        self.raw_type: FixedType = types["raw_input"]
        self.scaled_type: FixedType = types["scaled_input"]
        self.score_type: FixedType = types["score"]
        self._batch = BatchRunner(project.batch_library, N_FEATURES, 1)
        self._float_models, self._float_lock, self._float_buffers = {}, threading.Lock(), threading.local()
        self.fast: FastScorer | None = None
        self.fast_refused: str | None = None
        try:
            self.fast = FastScorer(self.hls_model, self.project_dir / FAST_DIR, threads)
        except FastKernelRefused as exc:
            self.fast_refused = str(exc)
            log.warning("fast scorer refused this firmware (%s); emulated scores use the ap_fixed driver", exc)

    def _use_fast(self, method: str) -> bool:
        """Whether ``method`` ('auto', 'fast', 'ap_fixed') runs on the fast kernel; refuses what cannot."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if method == "fast" and self.fast is None:
            raise FastKernelRefused(f"the fast scorer refused this firmware: {self.fast_refused}")
        return method != "ap_fixed" and self.fast is not None

    def float_scores(self, features: np.ndarray) -> np.ndarray:
        """Scores of the Keras model in float32 arithmetic, returned as float64 (N,).

        The model runs as XLA-compiled ``tf.function`` s of two fixed batch sizes, each
        compiled once per process: ``FLOAT_BATCH`` events at a time, and the rest of the
        events in batches of ``FLOAT_TAIL_BATCH`` (the last one padded with zero rows whose
        scores are dropped).  XLA fuses the quantizers' element-wise operations, about 2.5
        times faster than the plain graph here.  The scores equal ``keras.Model.predict``'s
        bit for bit (tested on every committed sample, padding and batch sizes included);
        ``predict`` itself is not used because TensorFlow 2.14 grows its resident memory by a
        few MB on every call, which a calibration of millions of events in chunks would turn
        into gigabytes.  Where XLA cannot compile the model the plain graph is used (logged).
        """
        features = _checked_features(features)
        scores = np.empty(len(features))
        start = 0
        while start < len(features):
            size = FLOAT_BATCH if len(features) - start >= FLOAT_BATCH else FLOAT_TAIL_BATCH
            batch = features[start : start + size]
            n = len(batch)
            if n < size:
                batch = self._padded(batch, size)
            scores[start : start + n] = self._compiled_float_model(size)(batch).numpy()[:n, 0]
            start += n
        return scores

    def _padded(self, batch: np.ndarray, size: int) -> np.ndarray:
        """``batch`` followed by zero rows up to ``size``, in this thread's reusable buffer."""
        buffers = self._float_buffers.__dict__
        if size not in buffers:
            buffers[size] = np.empty((size, N_FEATURES), np.float32)
        buffer = buffers[size]
        buffer[: len(batch)] = batch
        buffer[len(batch) :] = 0.0
        return buffer

    def _compiled_float_model(self, size: int):
        with self._float_lock:  # chunk tasks may call from several threads
            if size not in self._float_models:
                import tensorflow as tf

                signature = [tf.TensorSpec([size, N_FEATURES], tf.float32)]
                model = self.keras_model

                def run(x):
                    return model(x, training=False)

                compiled = tf.function(run, input_signature=signature, jit_compile=True, autograph=False)
                try:
                    compiled(tf.zeros([size, N_FEATURES]))
                except Exception as exc:  # noqa: BLE001 - any XLA failure: the plain graph gives the same numbers
                    log.warning("XLA could not compile the float model (%s); using the plain TensorFlow graph", exc)
                    compiled = tf.function(run, input_signature=signature, autograph=False)
                concrete = compiled.get_concrete_function()  # called directly: no per-call argument binding
                self._float_models[size] = lambda batch: concrete(tf.constant(batch))
        return self._float_models[size]

    def emulated_scores(self, features: np.ndarray, method: str = "auto") -> np.ndarray:
        """Bit-accurate firmware scores (N,) float64, each an exact value of ``score_type``.

        ``method``: ``"fast"`` the fused native kernel (:mod:`gelato.hls.fastscore`; raises
        :class:`~gelato.hls.fastkernel.FastKernelRefused` when it refused this firmware),
        ``"ap_fixed"`` the firmware C++ through the batch driver (:mod:`gelato.hls.batch`),
        ``"auto"`` the fast kernel when available, else the batch driver.
        """
        if self._use_fast(method):
            return self.fast.scores(_checked_features(features, check_finite=False))

        features = _checked_features(features)
        scores = np.zeros(len(features))
        for start in range(0, len(features), EMULATION_BLOCK):
            block = features[start : start + EMULATION_BLOCK].astype(np.float64)
            scores[start : start + len(block)] = self._batch.run(block)[:, 0]
        return scores

    def hls4ml_scores(self, features: np.ndarray) -> np.ndarray:
        """The same scores through hls4ml's own ``predict`` (one ctypes call per event; slow)."""
        features = _checked_features(features)
        if len(features) == 0:
            return np.zeros(0)
        inputs = np.ascontiguousarray(features.astype(np.float64))
        return np.asarray(self.hls_model.predict(inputs), dtype=np.float64).reshape(len(features))

    def scaled_features(self, features: np.ndarray) -> np.ndarray:
        """Model inputs in float, x / 2**s (N, 44) float32 (exact: powers of two)."""
        features = _checked_features(features)
        return features * np.ldexp(np.float32(1.0), -np.asarray(self.shifts)).astype(np.float32)

    def fixed_point_inputs(self, features: np.ndarray) -> np.ndarray:
        """Model inputs as the firmware holds them: values of the scaled type (N, 44) float64."""
        return shift_input_words(_checked_features(features), self.raw_type, self.scaled_type, self.shifts)

    def input_saturation(self, features: np.ndarray, method: str = "auto") -> np.ndarray:
        """Per feature (44,), the number of events whose raw or scaled input word saturates.

        ``method`` as for :meth:`emulated_scores`: ``"fast"`` counts in the fast kernel's C++,
        ``"ap_fixed"`` in numpy with :class:`FixedType` (the firmware's casts modelled there).
        """
        if self._use_fast(method):
            return self.fast.input_saturation(_checked_features(features, check_finite=False))
        features = _checked_features(features).astype(np.float64)
        raw_saturated = self.raw_type.saturates(features)
        words = self.raw_type.quantize(features)
        scaled_saturated = self.scaled_type.saturates(np.ldexp(words, -np.asarray(self.shifts)))
        return (raw_saturated | scaled_saturated).sum(axis=0).astype(np.int64)
