"""Batch-normalization folding of the export: QDense + BN in inference equals the folded dense."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from qkeras import QDense

from gelato.model.export import fold_batchnorm, store_quantized_weights, weight_clipping
from gelato.model.firmware import FirmwareQuantizers, build_firmware_model
from gelato.features import SEED_SHIFTS


def _dense_and_batchnorm(rng: np.random.Generator, n_in: int = 44, n_out: int = 32):
    q = FirmwareQuantizers()
    x_in = tf.keras.Input(shape=(n_in,))
    dense = QDense(n_out, kernel_quantizer=q.kernel, bias_quantizer=q.bias)
    bn = tf.keras.layers.BatchNormalization(epsilon=1e-3)
    model = tf.keras.Model(x_in, bn(dense(x_in)))

    dense.set_weights([rng.normal(0, 0.7, (n_in, n_out)), rng.normal(0, 2.0, n_out)])
    bn.set_weights([
        rng.uniform(0.2, 3.0, n_out),    # gamma
        rng.normal(0, 1.0, n_out),       # beta
        rng.normal(0, 2.0, n_out),       # moving mean
        rng.uniform(0.05, 5.0, n_out),   # moving variance
    ])  # fmt: skip
    return model, dense, bn


def test_folded_dense_equals_qdense_then_batchnorm_in_inference():
    rng = np.random.default_rng(11)
    model, dense, bn = _dense_and_batchnorm(rng)
    x = rng.normal(0, 1.5, (5000, 44)).astype(np.float32)

    kernel, bias = fold_batchnorm(dense, bn)
    expected = model(x, training=False).numpy().astype(np.float64)
    folded = x.astype(np.float64) @ kernel.astype(np.float64) + bias.astype(np.float64)
    assert np.max(np.abs(folded - expected)) < 1e-5 * max(1.0, np.max(np.abs(expected)))


def test_fold_uses_the_quantized_kernel_not_the_float_shadow_weights():
    rng = np.random.default_rng(12)
    _, dense, bn = _dense_and_batchnorm(rng)
    bn.set_weights([np.ones(32), np.zeros(32), np.zeros(32), np.ones(32) - bn.epsilon])  # identity BN
    kernel, bias = fold_batchnorm(dense, bn)
    np.testing.assert_array_equal(kernel, dense.kernel_quantizer_internal(dense.kernel).numpy())
    np.testing.assert_array_equal(bias, dense.bias_quantizer_internal(dense.bias).numpy())


def test_stored_quantized_weights_are_on_the_grid_and_leave_scores_unchanged():
    rng = np.random.default_rng(13)
    firmware = build_firmware_model(SEED_SHIFTS)
    for name, shape in (("dense_0", (44, 32)), ("dense_1", (32, 16)), ("mu", (16, 3))):
        firmware.get_layer(name).set_weights([rng.normal(0, 0.5, shape), rng.normal(0, 1, shape[1])])
    x = np.abs(rng.normal(0, 50, (2000, 44))).astype(np.float32)
    before = firmware(x).numpy()

    store_quantized_weights(firmware)
    np.testing.assert_array_equal(firmware(x).numpy(), before)
    for name in ("dense_0", "dense_1", "mu"):
        layer = firmware.get_layer(name)
        np.testing.assert_array_equal(layer.kernel_quantizer_internal(layer.kernel).numpy(), layer.kernel.numpy())


def test_weight_clipping_counts_values_outside_the_quantizer_range():
    firmware = build_firmware_model(SEED_SHIFTS)
    kernel = np.zeros((44, 32))
    kernel[0, :5] = 7.5  # quantized_bits(8,2) holds [-4, 3.96875]
    firmware.get_layer("dense_0").set_weights([kernel, np.zeros(32)])
    report = weight_clipping(firmware)["dense_0"]
    assert report["kernel_clipped"] == 5
    assert report["kernel_range"] == [-4.0, 3.96875]
