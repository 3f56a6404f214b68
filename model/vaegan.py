"""The GELATO VAE-GAN of the model stage: quantized encoder, decoder, discriminator, losses.

Architecture (seed paper, section 2.3); every network sees *scaled* features x / 2**s:

    encoder        44 -> QDense 32 -> BatchNorm -> quantized ReLU
                      -> QDense 16 -> BatchNorm -> quantized ReLU
                      -> QDense 3 "z_mean", QDense 3 "z_log_var"
                      -> z = z_mean + exp(z_log_var / 2) * eps,  eps ~ N(0, 1)
    decoder        3 -> Dense 16 ReLU -> Dense 32 ReLU -> Dense 44 (linear)
    discriminator  44 -> Dense 8 ReLU -> Dense 2 ReLU -> Dense 1 sigmoid

Only the encoder goes to the FPGA, so only it is quantized (QKeras, quantization-aware);
the decoder and discriminator are float Keras layers used during training only.

Losses of one step on a batch x (all means over the batch):

    reconstruction  mean over the 44 features of (x - decoder(z))**2
    kl              -1/2 sum_j (1 + z_log_var_j - z_mean_j**2 - exp(z_log_var_j))
    adversarial     BCE(D(decoder(z)), 1)      (encoder and decoder try to fool D)
    generator loss  w_rec * reconstruction + w_kl * kl + w_adv * adversarial
    discriminator   BCE(D(x), 1) + BCE(D(decoder(z)), 0)

The encoder and decoder minimise the generator loss with one Adam optimiser, the
discriminator its own loss with another, in the same step (the training driver gives
both a cosine-decaying learning rate).

The BatchNorm scales are capped, |gamma| <= ``batchnorm_gamma_max`` (0.5 by default), and
start at the cap.  On zero-bias events a unit's normalised pre-activation then spreads by
at most 0.5, so the top of quantized_relu(10,4), 16, is at least 32 zero-bias standard
deviations away: events far from zero bias (multi-hundred-GeV jets, several muons) keep
more of their distance in the score before the activation saturates.  Folding the batch
normalization into the firmware weights is :mod:`gelato.model.export`'s job.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np
import tensorflow as tf
from qkeras import QActivation, QDense

from gelato.features import N_FEATURES
from gelato.io import atomic_output
from gelato.model.firmware import HIDDEN_UNITS, LATENT_DIM, FirmwareQuantizers
from gelato.model.settings import DEFAULT_SEED, LossWeights

log = logging.getLogger(__name__)
LearningRateSchedule = tf.keras.optimizers.schedules.LearningRateSchedule

DECODER_UNITS = (16, 32)
DISCRIMINATOR_UNITS = (8, 2)
SUBMODELS = ("encoder", "decoder", "discriminator")


@dataclass(frozen=True)
class VaeGanConfig:
    """Everything needed to rebuild the three networks (layer sizes, quantizers, seed)."""

    hidden_units: tuple[int, ...] = HIDDEN_UNITS
    latent_dim: int = LATENT_DIM
    decoder_units: tuple[int, ...] = DECODER_UNITS
    discriminator_units: tuple[int, ...] = DISCRIMINATOR_UNITS
    quantizers: FirmwareQuantizers = field(default_factory=FirmwareQuantizers)
    loss_weights: LossWeights = field(default_factory=LossWeights)
    batchnorm_gamma_max: float | None = 0.5
    seed: int = DEFAULT_SEED

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VaeGanConfig:
        data = dict(data)
        data["quantizers"] = FirmwareQuantizers(**data["quantizers"])
        data["loss_weights"] = LossWeights(**data["loss_weights"])
        for key in ("hidden_units", "decoder_units", "discriminator_units"):
            data[key] = tuple(data[key])
        return cls(**data)


class SymmetricCap(tf.keras.constraints.Constraint):
    """Clip weights to [-limit, limit] after each update (the BatchNorm scale cap)."""

    def __init__(self, limit: float):
        self.limit = float(limit)

    def __call__(self, w):
        return tf.clip_by_value(w, -self.limit, self.limit)

    def get_config(self):
        return {"limit": self.limit}


def _batchnorm(config: VaeGanConfig, name: str) -> tf.keras.layers.BatchNormalization:
    cap = config.batchnorm_gamma_max
    if cap is None:
        return tf.keras.layers.BatchNormalization(name=name)
    if cap <= 0:
        raise ValueError(f"batchnorm_gamma_max must be > 0 (or None for no cap), got {cap}")
    return tf.keras.layers.BatchNormalization(
        gamma_initializer=tf.keras.initializers.Constant(cap), gamma_constraint=SymmetricCap(cap), name=name
    )


class Sampling(tf.keras.layers.Layer):
    """Reparameterisation: z = z_mean + exp(z_log_var / 2) * eps when training, else z_mean.

    eps comes from ``tf.random.normal`` with a fixed op seed, so under a fixed global seed
    (``tf.keras.utils.set_random_seed``) the sequence of draws repeats exactly.
    """

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)

    def call(self, inputs, training=None):
        z_mean, z_log_var = inputs
        if not training:
            return z_mean
        eps = tf.random.normal(tf.shape(z_mean), seed=self.seed)
        return z_mean + tf.exp(0.5 * z_log_var) * eps

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def build_encoder(config: VaeGanConfig) -> tf.keras.Model:
    """Scaled features (N, 44) -> [z_mean, z_log_var, z]; layer names are used by export."""
    q = config.quantizers
    x_in = tf.keras.Input(shape=(N_FEATURES,), name="scaled_features")
    x = x_in
    for i, units in enumerate(config.hidden_units):
        x = QDense(units, kernel_quantizer=q.kernel, bias_quantizer=q.bias, name=f"enc_dense_{i}")(x)
        x = _batchnorm(config, f"enc_bn_{i}")(x)
        x = QActivation(q.activation, name=f"enc_relu_{i}")(x)

    z_mean = QDense(config.latent_dim, kernel_quantizer=q.kernel, bias_quantizer=q.bias, name="z_mean")(x)
    z_log_var = QDense(config.latent_dim, kernel_quantizer=q.kernel, bias_quantizer=q.bias, name="z_log_var")(x)
    z = Sampling(seed=config.seed, name="z")([z_mean, z_log_var])
    return tf.keras.Model(x_in, [z_mean, z_log_var, z], name="encoder")


def build_decoder(config: VaeGanConfig) -> tf.keras.Model:
    """Latent z (N, 3) -> reconstructed scaled features (N, 44); float layers."""
    z_in = tf.keras.Input(shape=(config.latent_dim,), name="z")
    x = z_in
    for i, units in enumerate(config.decoder_units):
        x = tf.keras.layers.Dense(units, activation="relu", name=f"dec_dense_{i}")(x)
    x_hat = tf.keras.layers.Dense(N_FEATURES, activation=None, name="reconstruction")(x)
    return tf.keras.Model(z_in, x_hat, name="decoder")


def build_discriminator(config: VaeGanConfig) -> tf.keras.Model:
    """Scaled features (N, 44) -> probability (N, 1) that the event is real."""
    x_in = tf.keras.Input(shape=(N_FEATURES,), name="scaled_features")
    x = x_in
    for i, units in enumerate(config.discriminator_units):
        x = tf.keras.layers.Dense(units, activation="relu", name=f"disc_dense_{i}")(x)
    p_real = tf.keras.layers.Dense(1, activation="sigmoid", name="p_real")(x)
    return tf.keras.Model(x_in, p_real, name="discriminator")


class VaeGan:
    """The three networks, their two optimisers and one compiled training step."""

    def __init__(
        self,
        config: VaeGanConfig,
        learning_rate: float | LearningRateSchedule = 1e-3,
        discriminator_learning_rate: float | LearningRateSchedule = 1e-3,
    ):
        self.config = config
        self.encoder = build_encoder(config)
        self.decoder = build_decoder(config)
        self.discriminator = build_discriminator(config)
        self.generator_optimizer = tf.keras.optimizers.Adam(learning_rate)
        self.discriminator_optimizer = tf.keras.optimizers.Adam(discriminator_learning_rate)
        self._bce = tf.keras.losses.BinaryCrossentropy()
        self._train_step = tf.function(self._step, reduce_retracing=True)
        self._eval_step = tf.function(self._losses, reduce_retracing=True)

    @property
    def networks(self) -> dict[str, tf.keras.Model]:
        return {"encoder": self.encoder, "decoder": self.decoder, "discriminator": self.discriminator}

    def _losses(self, x: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        w = self.config.loss_weights
        z_mean, z_log_var, z = self.encoder(x, training=training)
        x_hat = self.decoder(z, training=training)
        p_real = self.discriminator(x, training=training)
        p_fake = self.discriminator(x_hat, training=training)

        reconstruction = tf.reduce_mean(tf.square(x - x_hat))
        kl = tf.reduce_mean(-0.5 * tf.reduce_sum(1.0 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var), axis=1))
        adversarial = self._bce(tf.ones_like(p_fake), p_fake)
        generator = w.reconstruction * reconstruction + w.kl * kl + w.adversarial * adversarial
        discriminator = self._bce(tf.ones_like(p_real), p_real) + self._bce(tf.zeros_like(p_fake), p_fake)
        return {
            "generator": generator,
            "reconstruction": reconstruction,
            "kl": kl,
            "adversarial": adversarial,
            "discriminator": discriminator,
        }

    def _step(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.GradientTape(persistent=True) as tape:
            losses = self._losses(x, training=True)
        generator_vars = self.encoder.trainable_variables + self.decoder.trainable_variables
        discriminator_vars = self.discriminator.trainable_variables

        generator_grads = tape.gradient(losses["generator"], generator_vars)
        discriminator_grads = tape.gradient(losses["discriminator"], discriminator_vars)
        del tape
        self.generator_optimizer.apply_gradients(zip(generator_grads, generator_vars))
        self.discriminator_optimizer.apply_gradients(zip(discriminator_grads, discriminator_vars))
        return losses

    def train_batch(self, x: np.ndarray) -> dict[str, float]:
        """One optimisation step on a batch of scaled features; returns its losses."""
        return {k: float(v) for k, v in self._train_step(tf.constant(x)).items()}

    def evaluate(self, x: np.ndarray, batch_size: int = 65536) -> dict[str, float]:
        """Losses in inference mode (z = z_mean, BN moving statistics), event-weighted mean."""
        totals: dict[str, float] = {}
        for start in range(0, len(x), batch_size):
            block = x[start : start + batch_size]
            for key, value in self._eval_step(tf.constant(block)).items():
                totals[key] = totals.get(key, 0.0) + float(value) * len(block)
        return {key: value / len(x) for key, value in totals.items()}

    def z_mean(self, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
        """Latent means (N, 3) of scaled features, inference mode, float64."""
        blocks = [self.encoder(x[i : i + batch_size], training=False)[0].numpy() for i in range(0, len(x), batch_size)]
        return np.concatenate(blocks).astype(np.float64) if blocks else np.zeros((0, self.config.latent_dim))


def save_vaegan_weights(path: str | os.PathLike[str], model: VaeGan, shifts: Sequence[int]) -> Path:
    """Write the weights of all three networks, the config and the shift table to one HDF5 file.

    Layout: group ``<network>/<layer>`` with datasets ``0, 1, ...`` in ``layer.get_weights()``
    order; root attributes ``config`` (JSON of :class:`VaeGanConfig`) and ``shifts`` (JSON).
    """
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["config"] = json.dumps(model.config.to_dict(), sort_keys=True)
        f.attrs["shifts"] = json.dumps([int(s) for s in shifts])
        for network_name, network in model.networks.items():
            for layer in network.layers:
                for i, array in enumerate(layer.get_weights()):
                    f.create_dataset(f"{network_name}/{layer.name}/{i}", data=array)
    return Path(path)


def load_vaegan_weights(path: str | os.PathLike[str]) -> tuple[VaeGan, list[int]]:
    """Rebuild a :class:`VaeGan` from :func:`save_vaegan_weights` output; returns (model, shifts)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no VAE-GAN weights here (run `gelato train` first)")
    with h5py.File(path, "r") as f:
        if "config" not in f.attrs or "shifts" not in f.attrs:
            raise ValueError(f"{path}: missing 'config'/'shifts' attributes; not written by `gelato train`")
        model = VaeGan(VaeGanConfig.from_dict(json.loads(f.attrs["config"])))
        shifts = [int(s) for s in json.loads(f.attrs["shifts"])]
        for network_name, network in model.networks.items():
            for layer in network.layers:
                expected = layer.get_weights()
                if not expected:
                    continue
                group = f.get(f"{network_name}/{layer.name}")
                if group is None or len(group) != len(expected):
                    raise ValueError(f"{path}: weights of {network_name}/{layer.name} missing or incomplete")
                layer.set_weights([group[str(i)][()] for i in range(len(expected))])
    return model, shifts
