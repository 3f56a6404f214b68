"""The firmware model: shift scaling -> quantized encoder mean -> score = sum of mu_j**2.

This is the network that runs on the FPGA.  It is a plain Keras/QKeras model so that
hls4ml converts it and TensorFlow evaluates it in float:

    raw features (44, GeV and rad)
      -> BitShiftScaling(shifts)                 x / 2**s
      -> QDense(32) -> QActivation(quantized_relu)
      -> QDense(16) -> QActivation(quantized_relu)
      -> QDense(3, name="mu")                    latent means
      -> Dot(axes=1, name="score")               sum_j mu_j**2  (the seed calls it the
                                                 "mean squared" latent, but sums; so do we)

Batch normalization of the trained encoder is folded into the dense weights once, by
:mod:`gelato.model.export`; the weights stored here are the ones the firmware uses.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from qkeras import QActivation, QDense

from gelato.features import FEATURE_NAMES, N_FEATURES
from gelato.model.layers import BitShiftScaling, custom_objects

HIDDEN_UNITS = (32, 16)
LATENT_DIM = 3


@dataclass(frozen=True)
class FirmwareQuantizers:
    """QKeras quantizer strings of the firmware encoder (see QKeras for their meaning)."""

    kernel: str = "quantized_bits(8,2,alpha=1)"
    bias: str = "quantized_bits(12,4,alpha=1)"
    activation: str = "quantized_relu(10,4)"


def build_firmware_model(
    shifts: Sequence[int],
    quantizers: FirmwareQuantizers = FirmwareQuantizers(),
    hidden_units: Sequence[int] = HIDDEN_UNITS,
    latent_dim: int = LATENT_DIM,
) -> tf.keras.Model:
    """Build the firmware graph (weights untrained); see the module docstring."""
    if len(shifts) != N_FEATURES:
        raise ValueError(f"expected {N_FEATURES} shift exponents, got {len(shifts)}")
    x_in = tf.keras.Input(shape=(N_FEATURES,), name="l1_objects")
    x = BitShiftScaling(shifts, name="bit_shift")(x_in)

    for i, units in enumerate(hidden_units):
        x = QDense(units, kernel_quantizer=quantizers.kernel, bias_quantizer=quantizers.bias, name=f"dense_{i}")(x)
        x = QActivation(quantizers.activation, name=f"relu_{i}")(x)

    mu = QDense(latent_dim, kernel_quantizer=quantizers.kernel, bias_quantizer=quantizers.bias, name="mu")(x)
    score = tf.keras.layers.Dot(axes=1, name="score")([mu, mu])
    return tf.keras.Model(x_in, score, name="gelato_firmware")


def save_firmware_model(model: tf.keras.Model, path: str | os.PathLike[str]) -> None:
    """Save the firmware model as Keras HDF5, with the feature names as an attribute."""
    import h5py

    from gelato.io import atomic_output

    with atomic_output(path) as tmp:
        model.save(tmp, save_format="h5")
        with h5py.File(tmp, "a") as f:
            f.attrs["feature_names"] = np.array(FEATURE_NAMES, dtype=h5py.string_dtype())


def load_firmware_model(path: str | os.PathLike[str]) -> tf.keras.Model:
    """Load a firmware model written by :func:`save_firmware_model`."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no firmware model here (run `make train` or pass --model)")
    return tf.keras.models.load_model(path, custom_objects=custom_objects(), compile=False)


def shifts_of(model: tf.keras.Model) -> list[int]:
    """The shift exponents of a firmware model's BitShiftScaling layer."""
    return list(model.get_layer("bit_shift").shifts)
