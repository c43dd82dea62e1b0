"""Training Mimi: the multi-scale STFT discriminator, the losses, semantic distillation, one
step, the run (`moshi train codec CONFIG.yaml`)."""

from .config import CodecTrainConfig
from .train import main

__all__ = ["CodecTrainConfig", "main"]
