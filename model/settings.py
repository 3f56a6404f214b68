"""Options of the model stage's training and export, with the committed model's defaults.

Kept free of TensorFlow imports so that the CLI can show them in ``--help`` quickly.
The quantizers are not here: they are :class:`gelato.model.firmware.FirmwareQuantizers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_SEED = 20251203


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator loss terms (see :mod:`gelato.model.vaegan`)."""

    reconstruction: float = 1.0
    kl: float = 0.001
    adversarial: float = 0.001


@dataclass(frozen=True)
class TrainSettings:
    """Options of one training run (the CLI exposes each; defaults are the committed model's)."""

    epochs: int = 50
    batch_size: int = 1024
    learning_rate: float = 1e-3
    discriminator_learning_rate: float = 1e-3
    validation_fraction: float = 0.2
    max_events: int | None = 500_000
    seed: int = DEFAULT_SEED
    loss_weights: LossWeights = field(default_factory=LossWeights)
    #: QKeras activation quantizer of the encoder, e.g. "quantized_relu(12,6)"; None keeps
    #: the FirmwareQuantizers default.  The hls config's relu types must match it.
    activation_quantizer: str | None = None
    #: Cap on |gamma| of the encoder's BatchNorm layers (see gelato.model.vaegan); None: no cap.
    batchnorm_gamma_max: float | None = 0.5

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch size must be >= 1, got {self.epochs} and {self.batch_size}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation fraction must be in (0, 1), got {self.validation_fraction}")
        if self.max_events is not None and self.max_events < 10:
            raise ValueError(f"max events must be >= 10 (or None for all), got {self.max_events}")


@dataclass(frozen=True)
class ExportSettings:
    """Options of the distillation fine-tune of the firmware model and of the checks after it."""

    finetune_epochs: int = 6
    finetune_batch_size: int = 1024
    finetune_learning_rate: float = 1e-4  # peak; cosine decay to zero over the fine-tune
    finetune_max_events: int = 200_000
    statistics_max_events: int = 1_000_000
    seed: int = DEFAULT_SEED
