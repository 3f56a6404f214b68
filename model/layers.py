"""Keras layers of the firmware model that QKeras does not provide.

:class:`BitShiftScaling` divides each input feature by a power of two, x / 2**s, the
GELATO input scaling.  In Keras it is an exact float multiplication; in firmware it is a
shift of the fixed-point input word (see ``gelato.hls``), so it needs no multiplier.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf


class BitShiftScaling(tf.keras.layers.Layer):
    """Scale feature i by 2**-shifts[i]; negative shifts multiply (left shift)."""

    def __init__(self, shifts: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        self.shifts = [int(s) for s in shifts]
        if any(int(s) != s for s in shifts):
            raise ValueError(f"shifts must be integers, got {list(shifts)}")
        self._factors = tf.constant(np.ldexp(1.0, -np.asarray(self.shifts)), dtype=tf.float32)

    def build(self, input_shape):
        if input_shape[-1] != len(self.shifts):
            raise ValueError(f"BitShiftScaling has {len(self.shifts)} shifts but the input has {input_shape[-1]} features")
        super().build(input_shape)

    def call(self, inputs):
        return inputs * self._factors

    def get_config(self):
        return {**super().get_config(), "shifts": self.shifts}


def custom_objects() -> dict:
    """Every custom object needed to load a saved GELATO Keras model."""
    from qkeras.utils import _add_supported_quantized_objects

    objects: dict = {"BitShiftScaling": BitShiftScaling}
    _add_supported_quantized_objects(objects)
    return objects
