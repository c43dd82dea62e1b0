"""Training Mimi: the multi-scale STFT discriminator, the losses, semantic distillation, one
step, the run (`moshi train codec CONFIG.yaml`)."""

from .config import CodecTrainConfig
from .train import train

__all__ = ["CodecTrainConfig", "train"]
