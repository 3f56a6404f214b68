"""From the trained VAE-GAN to the firmware model (model stage -> hls stage).

One function, :func:`export_firmware`, used by ``gelato train`` and ``gelato export``:

1. fold each BatchNormalization into the QDense before it (:func:`fold_batchnorm`, the
   only place where this arithmetic lives), using the dense layer's *quantized* kernel and
   bias, since that is what the trained encoder computes with;
2. build the firmware graph with :func:`gelato.model.firmware.build_firmware_model` and
   load the folded weights (``mu`` takes the trained ``z_mean`` weights unchanged);
3. fine-tune that firmware encoder briefly, quantization-aware, by distillation: MSE
   between its ``mu`` and the trained encoder's ``z_mean`` on the training events.
   Folding rescales the weights, so their 8-bit quantization is not the one the network
   was trained with; the fine-tune lets the weights settle on the new grid;
4. replace the stored float weights by their quantized values (the quantizers are
   idempotent, so the Keras scores do not change and the file holds exactly the
   firmware's numbers), then measure: score agreement with the trained encoder, quantized
   ReLU saturation, score statistics per sample file;
5. write ``firmware_model.h5`` (:func:`gelato.model.firmware.save_firmware_model`) and
   ``export.json``.

The float score of the firmware model (TensorFlow, quantized weights and activations)
is what calibration calls "float"; fixed-point types of the sum and the inputs are the
hls stage's choice.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import tensorflow as tf

from gelato.io import atomic_output, read_events
from gelato.model.firmware import FirmwareQuantizers, build_firmware_model, save_firmware_model, shifts_of
from gelato.model.settings import ExportSettings
from gelato.model.shifts import scale_features
from gelato.model.vaegan import VaeGan

log = logging.getLogger(__name__)

FIRMWARE_FILE = "firmware_model.h5"
EXPORT_JSON = "export.json"
SCORE_QUANTILES = (0.5, 0.9, 0.99, 0.999, 0.9999)
#: Zero-bias (validation) score quantile used as the reference threshold of the saturation
#: check: 1e-4 of crossings pass, 2.9 kHz at 28.61 MHz, between the 2 and 5 kHz menu points.
REFERENCE_THRESHOLD_QUANTILE = 0.9999


def fold_batchnorm(
    dense: tf.keras.layers.Layer, batchnorm: tf.keras.layers.BatchNormalization
) -> tuple[np.ndarray, np.ndarray]:
    """Kernel and bias of one dense layer equal to ``batchnorm(dense(x))`` in inference.

    With the dense layer's quantized kernel W and bias b, and BN parameters gamma, beta,
    moving mean m, moving variance v and epsilon e:

        scale = gamma / sqrt(v + e);  W' = W * scale (per output unit);  b' = (b - m) * scale + beta

    computed in float64 and returned as float32.
    """
    kernel, bias = _quantized_kernel_bias(dense)
    gamma, beta, mean, variance = (np.asarray(w, dtype=np.float64) for w in _bn_parameters(batchnorm))
    scale = gamma / np.sqrt(variance + batchnorm.epsilon)
    folded_kernel = kernel * scale[np.newaxis, :]
    folded_bias = (bias - mean) * scale + beta
    return folded_kernel.astype(np.float32), folded_bias.astype(np.float32)


def _quantized_kernel_bias(dense: tf.keras.layers.Layer) -> tuple[np.ndarray, np.ndarray]:
    kernel = dense.kernel
    if getattr(dense, "kernel_quantizer_internal", None) is not None:
        kernel = dense.kernel_quantizer_internal(kernel)
    bias = dense.bias if dense.use_bias else tf.zeros(kernel.shape[-1])
    if dense.use_bias and getattr(dense, "bias_quantizer_internal", None) is not None:
        bias = dense.bias_quantizer_internal(bias)
    return np.asarray(kernel, dtype=np.float64), np.asarray(bias, dtype=np.float64)


def _bn_parameters(bn: tf.keras.layers.BatchNormalization) -> tuple[np.ndarray, ...]:
    size = bn.moving_mean.shape[0]
    gamma = bn.gamma.numpy() if bn.scale else np.ones(size)
    beta = bn.beta.numpy() if bn.center else np.zeros(size)
    return gamma, beta, bn.moving_mean.numpy(), bn.moving_variance.numpy()


def firmware_from_vaegan(model: VaeGan, shifts: Sequence[int]) -> tf.keras.Model:
    """The firmware graph with folded weights from the trained encoder (no fine-tune yet)."""
    encoder = model.encoder
    firmware = build_firmware_model(shifts, model.config.quantizers, model.config.hidden_units, model.config.latent_dim)
    for i in range(len(model.config.hidden_units)):
        folded = fold_batchnorm(encoder.get_layer(f"enc_dense_{i}"), encoder.get_layer(f"enc_bn_{i}"))
        firmware.get_layer(f"dense_{i}").set_weights(list(folded))
    firmware.get_layer("mu").set_weights(encoder.get_layer("z_mean").get_weights())
    return firmware


def latent_means(firmware: tf.keras.Model, raw_features: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """The firmware model's ``mu`` (N, 3) for raw features, float64."""
    mu_model = tf.keras.Model(firmware.input, firmware.get_layer("mu").output)
    return _batched(mu_model, raw_features, batch_size)


def firmware_scores(firmware: tf.keras.Model, raw_features: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """The firmware model's float score sum_j mu_j**2 (N,), float64."""
    return _batched(firmware, raw_features, batch_size)[:, 0]


def _batched(network: tf.keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    blocks = [network(x[i : i + batch_size], training=False).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(blocks).astype(np.float64)


def finetune_by_distillation(
    firmware: tf.keras.Model,
    fit: tuple[np.ndarray, np.ndarray],
    check: tuple[np.ndarray, np.ndarray],
    settings: ExportSettings,
) -> list[dict[str, float]]:
    """Quantization-aware fine-tune of the firmware encoder by distillation, in place.

    ``fit`` and ``check`` are (raw features, target latent means) pairs.  The loss is
    MSE(mu, target) on ``fit``, minimised by Adam with a cosine-decaying learning rate:
    at a constant rate the weights keep hopping between quantization levels, the decay
    lets them settle.  After each epoch the same MSE is measured on ``check`` (inference
    mode) and the weights of the best epoch, possibly the folded start (epoch 0), are
    kept, so the fine-tune never leaves the model worse on held-out events.
    """
    raw, targets = fit[0], fit[1].astype(np.float32)
    n_batches = max(1, len(raw) // settings.finetune_batch_size)
    student = tf.keras.Model(firmware.input, firmware.get_layer("mu").output)
    total_steps = settings.finetune_epochs * n_batches
    optimizer = tf.keras.optimizers.Adam(
        tf.keras.optimizers.schedules.CosineDecay(settings.finetune_learning_rate, total_steps)
    )

    @tf.function(reduce_retracing=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(student(x, training=True) - y))
        optimizer.apply_gradients(zip(tape.gradient(loss, student.trainable_variables), student.trainable_variables))
        return loss

    def check_mse() -> float:
        return float(np.mean((_batched(student, check[0], 65536) - check[1]) ** 2))

    history = [{"epoch": 0, "train_mse": float("nan"), "check_mse": check_mse()}]
    best, best_weights = history[0]["check_mse"], student.get_weights()
    for epoch in range(1, settings.finetune_epochs + 1):
        order = np.random.default_rng([settings.seed, 2, epoch]).permutation(len(raw))
        total = 0.0
        for b in range(n_batches):
            idx = order[b * settings.finetune_batch_size : (b + 1) * settings.finetune_batch_size]
            total += float(step(tf.constant(raw[idx]), tf.constant(targets[idx])))
        history.append({"epoch": epoch, "train_mse": total / n_batches, "check_mse": check_mse()})
        log.info("distillation epoch %d/%d: MSE(mu, z_mean) train %.3g, held out %.3g",
                 epoch, settings.finetune_epochs, history[-1]["train_mse"], history[-1]["check_mse"])  # fmt: skip
        if history[-1]["check_mse"] < best:
            best, best_weights = history[-1]["check_mse"], student.get_weights()

    student.set_weights(best_weights)
    return history


def store_quantized_weights(firmware: tf.keras.Model) -> None:
    """Replace each QDense's float kernel and bias by their quantized values, in place."""
    for layer in firmware.layers:
        if hasattr(layer, "kernel_quantizer_internal"):
            kernel, bias = _quantized_kernel_bias(layer)
            layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])


def weight_clipping(firmware: tf.keras.Model) -> dict[str, dict[str, int]]:
    """Per QDense layer: how many kernel/bias values lie outside their quantizer's range."""
    report = {}
    for layer in firmware.layers:
        if not hasattr(layer, "kernel_quantizer_internal"):
            continue
        entry = {}
        for name, values, quantizer in (
            ("kernel", layer.kernel.numpy(), layer.kernel_quantizer_internal),
            ("bias", layer.bias.numpy(), layer.bias_quantizer_internal),
        ):
            low, high = (float(quantizer(tf.constant([v], tf.float32))[0]) for v in (-1e4, 1e4))
            entry[f"{name}_clipped"] = int(np.count_nonzero((values < low) | (values > high)))
            entry[f"{name}_values"] = int(values.size)
            entry[f"{name}_range"] = [low, high]
        report[layer.name] = entry
    return report


def activation_saturation(firmware: tf.keras.Model, raw_features: np.ndarray) -> dict[str, dict[str, float]]:
    """Per quantized ReLU: fraction of events with any unit at the top of its range, and of units."""
    report = {}
    for layer in firmware.layers:
        if not layer.name.startswith("relu_"):
            continue
        top = float(layer.quantizer(tf.constant([1e4], tf.float32))[0])
        pre = _batched(tf.keras.Model(firmware.input, layer.input), raw_features, 65536)
        saturated = pre >= top
        report[layer.name] = {
            "max_value": top,
            "events_with_any_saturated_unit": float(saturated.any(axis=1).mean()),
            "saturated_unit_fraction": float(saturated.mean()),
        }
    return report


def unclipped_twin(firmware: tf.keras.Model, quantizers: FirmwareQuantizers, extra_bits: int = 12) -> tf.keras.Model:
    """The same firmware model with quantized ReLUs ``extra_bits`` wider at the top (same LSB).

    Comparing the two isolates what saturation of the activations does to the score.
    """
    relu = firmware.get_layer("relu_0").quantizer
    wide = f"quantized_relu({int(relu.bits) + extra_bits},{int(relu.integer) + extra_bits})"
    twin = build_firmware_model(shifts_of(firmware), replace(quantizers, activation=wide))
    for layer in firmware.layers:
        if layer.get_weights():
            twin.get_layer(layer.name).set_weights(layer.get_weights())
    return twin


def saturation_impact(scores: np.ndarray, unclipped_scores: np.ndarray, threshold: float) -> dict[str, float]:
    """How saturation moves scores, and how many trigger decisions (score > threshold) it flips."""
    changed = ~np.isclose(scores, unclipped_scores, rtol=1e-6, atol=0.0)
    flipped = (scores > threshold) != (unclipped_scores > threshold)
    return {
        "threshold": float(threshold),
        "events_with_changed_score": float(changed.mean()),
        "flipped_decisions": float(flipped.mean()),
        "lost_by_saturation": float(((unclipped_scores > threshold) & (scores <= threshold)).mean()),
        "pass_fraction": float((scores > threshold).mean()),
    }


def score_statistics(scores: np.ndarray) -> dict[str, float]:
    """Quantiles, mean and maximum of a score array (for choosing the firmware score type)."""
    stats = {f"q{q:g}": float(np.quantile(scores, q)) for q in SCORE_QUANTILES}
    stats.update(events=int(scores.size), mean=float(scores.mean()), max=float(scores.max()), min=float(scores.min()))
    return stats


def score_agreement(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlation and relative differences of two score arrays."""
    from scipy.stats import spearmanr

    positive = reference > 0
    relative = np.abs(candidate[positive] - reference[positive]) / reference[positive]
    return {
        "events": int(reference.size),
        "pearson": float(np.corrcoef(reference, candidate)[0, 1]),
        "spearman": float(spearmanr(reference, candidate).statistic),
        "median_relative_difference": float(np.median(relative)),
        "q90_relative_difference": float(np.quantile(relative, 0.9)),
    }


def export_firmware(
    model: VaeGan,
    shifts: Sequence[int],
    fit_features: np.ndarray,
    check_features: np.ndarray,
    out_dir: str | os.PathLike[str],
    settings: ExportSettings = ExportSettings(),
    samples_dir: Path | None = None,
) -> dict:
    """Fold, fine-tune, check and save the firmware model (see the module docstring).

    ``fit_features`` (raw, GeV and rad) drive the distillation, ``check_features`` (events
    not used for training) the agreement and saturation figures.  Every ``*.h5`` sample in
    ``samples_dir`` gets score statistics.  Returns the content of ``export.json``.
    """
    t0 = time.perf_counter()
    firmware = firmware_from_vaegan(model, shifts)
    clipping_after_fold = weight_clipping(firmware)
    reference = np.sum(model.z_mean(scale_features(check_features, shifts)) ** 2, axis=1)
    before = score_agreement(reference, firmware_scores(firmware, check_features))
    log.info("score agreement after folding: %s", before)

    fit = fit_features[: settings.finetune_max_events]
    fit_means = model.z_mean(scale_features(fit, shifts))
    check_means = model.z_mean(scale_features(check_features, shifts))
    distillation = finetune_by_distillation(firmware, (fit, fit_means), (check_features, check_means), settings)
    store_quantized_weights(firmware)
    after = score_agreement(reference, firmware_scores(firmware, check_features))
    log.info("score agreement after distillation: %s", after)

    check_scores = firmware_scores(firmware, check_features)
    threshold = float(np.quantile(check_scores, REFERENCE_THRESHOLD_QUANTILE))
    twin = unclipped_twin(firmware, model.config.quantizers)
    summary = {
        "settings": asdict(settings),
        "weight_clipping_after_fold": clipping_after_fold,
        "distillation": distillation,
        "agreement": {"after_fold": before, "after_finetune": after},
        "saturation": activation_saturation(firmware, check_features),
        "score_statistics": {"validation": score_statistics(check_scores)},
        "saturation_per_sample": {},
        "saturation_impact": {},
    }
    for path in sorted(Path(samples_dir).glob("*.h5")) if samples_dir is not None else []:
        sample = read_events(path, max_events=settings.statistics_max_events)
        scores = firmware_scores(firmware, sample.features)
        summary["score_statistics"][path.stem] = score_statistics(scores)
        summary["saturation_per_sample"][path.stem] = activation_saturation(firmware, sample.features)
        impact = saturation_impact(scores, firmware_scores(twin, sample.features), threshold)
        summary["saturation_impact"][path.stem] = impact
    summary["seconds"] = time.perf_counter() - t0

    out_dir = Path(out_dir)
    tf_logger, level = tf.get_logger(), tf.get_logger().level
    with warnings.catch_warnings():  # Keras calls HDF5 "legacy" and warns about metrics; hls4ml reads HDF5
        warnings.simplefilter("ignore", UserWarning)
        tf_logger.setLevel(logging.ERROR)
        try:
            save_firmware_model(firmware, out_dir / FIRMWARE_FILE)
        finally:
            tf_logger.setLevel(level)
    with atomic_output(out_dir / EXPORT_JSON) as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    return summary
