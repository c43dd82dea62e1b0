"""The training YAML: moshi-finetune's keys as they are, plus a few of ours, in a frozen tree.

Every key is accounted for: an unknown key is an error that names it (never ignored), a
value of the wrong type an error naming the key and the expected type. moshi-finetune's
`wandb.*` keys are accepted and warned about (no wandb here: metrics go to JSON lines and
TensorBoard). Our keys: `task`, `model.config` (train a fresh model from a Kyutai
config.json), `model.init_std`, `model.init_from`, `lora.targets`, `fsdp`, `device`, `cache_dir`,
`eval_batches`, `input_dropout`, `own_audio`, `own_audio_temp`, `text_loss_weight`, `reply_weight`.
README.md ("Train and fine-tune") shows a full file.
"""

from __future__ import annotations

import dataclasses
import logging
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TASKS = ("dialogue", "stt", "tts")
PARAM_DTYPES = ("bfloat16", "float16", "float32")


@dataclass(frozen=True)
class DataConfig:
    train_data: str = ""  # a .jsonl manifest
    eval_data: str = ""
    shuffle: bool = True


@dataclass(frozen=True)
class ModelPaths:
    hf_repo_id: str | None = "kyutai/moshiko-pytorch-bf16"
    mimi_path: str | None = None
    mimi_config_path: str | None = None  # the codec's mimi_config.json (a small codec: ours)
    moshi_path: str | None = None
    tokenizer_path: str | None = None
    config_path: str | None = None


@dataclass(frozen=True)
class ModelInit:
    """Ours: a fresh model (random weights) from a Kyutai config.json, instead of
    `moshi_paths.moshi_path`'s weights (Mimi and the tokenizer still come from moshi_paths)."""

    config: str | None = None
    init_std: float = 0.02
    init_from: str | None = None  # a trained model's directory to start from (warm_start.py)


@dataclass(frozen=True)
class LoRAConfig:
    enable: bool = False
    rank: int = 64
    scaling: float = 2.0
    ft_embed: bool = False
    targets: tuple[str, ...] = ("*",)  # ours: glob patterns on module names (moshi/lora.py)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.1
    pct_start: float = 0.05


@dataclass(frozen=True)
class WandbConfig:
    project: str | None = None
    offline: bool = False
    key: str | None = None
    run_name: str | None = None


@dataclass(frozen=True)
class TrainConfig:
    run_dir: str
    data: DataConfig = field(default_factory=DataConfig)
    moshi_paths: ModelPaths = field(default_factory=ModelPaths)
    first_codebook_weight_multiplier: float = 100.0
    text_padding_weight: float = 0.5
    optim: OptimConfig = field(default_factory=OptimConfig)
    seed: int = 0
    num_microbatches: int = 1
    duration_sec: float = 10.0
    batch_size: int = 1
    max_norm: float = 1.0
    max_steps: int = 100
    log_freq: int = 1
    ckpt_freq: int = 0  # < 1: only the last checkpoint
    save_adapters: bool = True
    do_ckpt: bool = True
    num_ckpt_keep: int | None = 3
    eval_freq: int = 0
    do_eval: bool = False
    gradient_checkpointing: bool = True
    wandb: WandbConfig = field(default_factory=WandbConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    full_finetuning: bool = False
    param_dtype: str = "bfloat16"  # frozen weights' dtype on a GPU (a CPU trains in float32)
    overwrite_run_dir: bool = False
    # Ours.
    task: str = "dialogue"  # dialogue | stt | tts: how the data becomes the LM's streams
    model: ModelInit = field(default_factory=ModelInit)
    fsdp: bool = False  # shard parameters (FSDP2) instead of replicating them (DDP)
    device: str | None = None  # default: cuda when available
    cache_dir: str | None = None  # codec codes cache (default: RUN_DIR/../codes_cache)
    eval_batches: int = 8  # batches per evaluation
    input_dropout: float = 0.0  # share of read-only audio tokens zeroed in training (lm_task.py)
    own_audio: float = 0.0  # share of its own audio tokens the model reads as its samples (lm_task.py)
    own_audio_temp: float = 0.3  # the temperature they are drawn at (0: the argmax)
    text_loss_weight: float = 1.0  # the text loss' weight in the total, the audio's being 1 (loss.py)
    reply_weight: float = 1.0  # dialogue: Moshi's reply tokens' weight in the text loss (loss.py)

    def __post_init__(self) -> None:
        positive = ("batch_size", "num_microbatches", "max_steps", "log_freq", "eval_batches")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"config.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("text_loss_weight", "reply_weight"):
            if getattr(self, name) <= 0:
                raise ValueError(f"config.{name} must be > 0, got {getattr(self, name)}")
        if self.duration_sec <= 0:
            raise ValueError(f"config.duration_sec must be > 0, got {self.duration_sec}")
        if self.num_ckpt_keep is not None and self.num_ckpt_keep < 1:
            raise ValueError(f"config.num_ckpt_keep must be >= 1 or null, got {self.num_ckpt_keep}")
        if self.task not in TASKS:
            raise ValueError(f"config.task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.param_dtype not in PARAM_DTYPES:
            raise ValueError(
                f"config.param_dtype must be one of {', '.join(PARAM_DTYPES)}, got {self.param_dtype!r}"
            )
        if self.full_finetuning == self.lora.enable:
            raise ValueError("set exactly one of full_finetuning: true and lora.enable: true")
        if self.model.init_from is not None and self.model.config is None:
            raise ValueError("config.model.init_from needs config.model.config (the model it starts)")
        if not 0 <= self.input_dropout < 1:
            raise ValueError(f"config.input_dropout must be in [0, 1), got {self.input_dropout}")
        if not 0 <= self.own_audio <= 1:
            raise ValueError(f"config.own_audio must be in [0, 1], got {self.own_audio}")
        if self.own_audio_temp < 0:
            raise ValueError(f"config.own_audio_temp must be >= 0, got {self.own_audio_temp}")
        if not 0 <= self.optim.pct_start < 1:
            raise ValueError(f"config.optim.pct_start must be in [0, 1), got {self.optim.pct_start}")
        if self.lora.enable and (self.lora.rank < 1 or self.lora.scaling <= 0):
            raise ValueError("config.lora needs rank >= 1 and scaling > 0")

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(read_yaml(path))

    @classmethod
    def from_dict(cls, data: Any) -> TrainConfig:
        config = build_config(cls, data)
        if config.wandb.project is not None:
            log.warning(
                "wandb is not supported: config.wandb is ignored (metrics go to RUN_DIR/metrics.jsonl)"
            )
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def read_yaml(path: str | Path) -> Any:
    """The YAML document at `path`; ValueError with one line when it cannot be read."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from e
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from e


def build_config(cls: type, data: Any, where: str = "config") -> Any:
    """The frozen dataclass `cls` from a mapping, every key checked (see the module doc)."""
    return _build(cls, data, where)


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping of keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"unknown key{'s' * (len(unknown) > 1)} {', '.join(f'{where}.{k}' for k in unknown)}"
        )
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"missing key {', '.join(f'{where}.{k}' for k in missing)}")
    values = {k: _value(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**values)


def _value(hint: Any, v: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, {} if v is None else v, where)  # type: ignore[arg-type]
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        if v is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _value(inner, v, where)
    if typing.get_origin(hint) is tuple:  # tuple[X, ...]
        items = v if isinstance(v, list) else [v]
        return tuple(_value(args[0], x, f"{where}[{i}]") for i, x in enumerate(items))
    if typing.get_origin(hint) is dict:  # free-form (checked by whoever reads it)
        if isinstance(v, dict):
            return v
        raise ValueError(f"{where}: expected a mapping, got {v!r}")
    if hint is bool:
        if isinstance(v, bool):
            return v
    elif hint is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    elif hint is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, str):  # YAML reads `2e-6` (no dot) as a string
            try:
                return float(v)
            except ValueError:
                pass
    elif hint is str and isinstance(v, str):
        return v
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    raise ValueError(f"{where}: expected {names.get(hint, hint)}, got {v!r}")
