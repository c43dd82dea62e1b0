"""The codec training YAML (`moshi train codec CONFIG.yaml`), as a frozen tree.

Keys shared with the LM's file keep moshi-finetune's names (`run_dir`, `data.train_data`,
`batch_size`, `duration_sec`, `max_steps`, `max_norm`, `seed`, `log_freq`, `ckpt_freq`).
The model is a `MimiConfig` preset with changes (`model.mimi`), or a Kyutai Mimi config
json (`model.config`), from scratch or from weights (`model.weights`). Loss weights,
the quantizer's training (`quantizer`: see `moshi.codec.quantizer.VQTraining`), the
discriminator and the distillation teacher each have a section.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...codec import MimiConfig
from ...codec.loading import mimi_config
from ...codec.quantizer import VQTraining
from ..config import build_config, read_yaml
from .discriminator import DiscriminatorConfig


@dataclass(frozen=True)
class CodecModelConfig:
    preset: str = "mimi"  # a name of moshi.codec.config.MIMI_PRESETS
    mimi: dict[str, Any] = field(default_factory=dict)  # MimiConfig fields changed from the preset
    config: str | None = None  # instead: a Kyutai Mimi config json
    weights: str | None = None  # start from these weights (what load_mimi reads); None: from scratch
    num_codebooks: int | None = None  # codebooks trained (and quantizer dropout's maximum); None: all
    # Train the decoder alone on the codes of the frozen encoder and quantizer of `weights`: the
    # codes of any audio stay what they were, so language models trained on them stay valid.
    decoder_only: bool = False

    def __post_init__(self) -> None:
        if self.decoder_only and self.weights is None:
            raise ValueError("model.decoder_only needs model.weights (the encoder to keep)")

    def architecture(self) -> MimiConfig:
        if self.config is not None:
            if self.mimi:
                raise ValueError("set model.config or model.mimi, not both")
            return mimi_config(self.config)
        try:
            changes = {k: tuple(v) if isinstance(v, list) else v for k, v in self.mimi.items()}
            return MimiConfig.preset(self.preset, **changes)
        except TypeError as e:  # an unknown field
            raise ValueError(f"model.mimi: {e}") from e


@dataclass(frozen=True)
class CodecLossConfig:
    """Weights of the generator's losses (0 turns one off; the discriminator trains only when
    `adversarial` or `feature_matching` is on)."""

    mel: float = 1.0  # multi-scale log-mel L1 (what starts training on small budgets)
    waveform: float = 0.1  # waveform L1
    envelope: float = 0.0  # 1 - correlation of third-octave band envelopes (STOI's measure)
    adversarial: float = 3.0  # hinge loss of the multi-scale STFT discriminator
    feature_matching: float = 3.0
    commitment: float = 1.0
    distill: float = 1.0  # cosine to the teacher (only with distill.teacher)
    adversarial_start: int = 0  # steps of reconstruction alone before the discriminator joins

    @property
    def uses_discriminator(self) -> bool:
        return self.adversarial > 0 or self.feature_matching > 0


@dataclass(frozen=True)
class DistillConfig:
    teacher: str | None = None  # "package.module:factory" (see distill.py); None: no distillation
    teacher_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CodecOptimConfig:
    """AdamW for the codec and the discriminator, cosine decay from lr to final_lr."""

    lr: float = 1e-3
    final_lr: float = 1e-4
    warmup_steps: int = 0
    beta1: float = 0.5
    beta2: float = 0.9
    weight_decay: float = 0.0
    discriminator_lr: float | None = None  # None: lr


@dataclass(frozen=True)
class CodecDataConfig:
    train_data: str = ""  # a .jsonl manifest of {"path": ..., "duration": ...} (moshi-finetune's)


@dataclass(frozen=True)
class CodecTrainConfig:
    run_dir: str
    data: CodecDataConfig = field(default_factory=CodecDataConfig)
    model: CodecModelConfig = field(default_factory=CodecModelConfig)
    quantizer: VQTraining = field(default_factory=VQTraining)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: CodecLossConfig = field(default_factory=CodecLossConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    optim: CodecOptimConfig = field(default_factory=CodecOptimConfig)
    seed: int = 0
    duration_sec: float = 1.0  # random crops of this length (rounded down to whole codec frames)
    batch_size: int = 8
    max_steps: int = 1000
    max_norm: float = 1.0  # gradient clipping, codec and discriminator each
    log_freq: int = 10
    ckpt_freq: int = 0  # < 1: only the last checkpoint
    do_ckpt: bool = True
    num_ckpt_keep: int | None = 3
    do_eval: bool = False
    eval_freq: int = 0  # < 1: only at the end (with do_eval)
    eval_batches: int = 4  # crops drawn (with a fixed seed) to evaluate on
    overwrite_run_dir: bool = False
    device: str | None = None  # default: cuda when available

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_steps", "log_freq", "eval_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"config.{name} must be >= 1, got {getattr(self, name)}")
        if self.duration_sec <= 0:
            raise ValueError(f"config.duration_sec must be > 0, got {self.duration_sec}")

    @classmethod
    def load(cls, path: str | Path) -> CodecTrainConfig:
        return cls.from_dict(read_yaml(path))

    @classmethod
    def from_dict(cls, data: Any) -> CodecTrainConfig:
        """From a mapping (the YAML's): unknown keys and wrong types are named errors."""
        return build_config(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
