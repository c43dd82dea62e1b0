"""For the training tests: a manifest of files; synthetic code datasets, tiny models and
configs for the trainer."""

import json
import math
import os
from pathlib import Path

import torch

from moshi.lm import LMModel, load_lm
from moshi.train.codec import CodecTrainConfig
from moshi.train.codec.config import CodecModelConfig
from moshi.train.codec.discriminator import DiscriminatorConfig
from tests.support.fixtures import FIXTURES


def manifest(root: Path, paths: list[Path]) -> Path:
    """A .jsonl next to `root/data` listing the files by relative path (durations unread)."""
    out = root / "data.jsonl"
    lines = [json.dumps({"path": str(p.relative_to(root)), "duration": 1.0}) for p in paths]
    out.write_text("\n".join(lines) + "\n")
    return out


class PatternDataset:
    """`n` items [1 + n_q, T]: stream k of item i is (a_i * t + k) % card (text likewise in
    its vocabulary), some text padding, and -1 after `T - hole` frames in the last item:
    learnable from the previous step, so a tiny model's loss falls fast."""

    def __init__(self, model: LMModel, n: int = 8, T: int = 16):
        cfg = model.config
        self.items = []
        for i in range(n):
            t = torch.arange(T)
            rows = [(t * (i + 1) + 5) % cfg.text_card]
            rows[0] = torch.where(t % 4 == 0, torch.full_like(t, cfg.text_padding_id), rows[0])
            rows += [(t * (i + 1) + k) % cfg.card for k in range(cfg.n_q)]
            item = torch.stack(rows)
            if i == n - 1:
                item[:, T - 3 :] = -1
            self.items.append(item)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.items[i]


def tiny_lm(name: str = "moshi_lm_tiny") -> LMModel:
    return load_lm(FIXTURES / name / "weights.safetensors", FIXTURES / name / "config.json").train()


def tiny_config(run_dir, name: str = "moshi_lm_tiny", **overrides) -> dict:
    """A training config (as the YAML's dict) for a tiny fixture model, on the CPU."""
    base = {
        "run_dir": str(run_dir),
        "moshi_paths": {
            "hf_repo_id": None,
            "moshi_path": str(FIXTURES / name / "weights.safetensors"),
            "config_path": str(FIXTURES / name / "config.json"),
            "mimi_path": str(FIXTURES / "mimi_tiny" / "weights.safetensors"),
            "tokenizer_path": str(FIXTURES / "tiny_spm_100.model"),
        },
        "full_finetuning": True,
        "max_steps": 6,
        "ckpt_freq": 3,
        "batch_size": 2,
        "param_dtype": "float32",
        "gradient_checkpointing": False,
        "optim": {"lr": 1e-2, "pct_start": 0.2},
        "device": "cpu",
        "log_freq": 1,
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            base[key] = {**base.get(key, {}), **value}
        else:
            base[key] = value
    return base


# A Mimi small enough to train in CI (MimiConfig fields changed from the released ones).
TINY_MIMI = dict(
    dimension=32,
    n_filters=4,
    num_heads=2,
    num_layers=1,
    dim_feedforward=64,
    context=20,
    codebook_dim=16,
    codebook_size=32,
    total_codebooks=4,
)


def join_process_group(rank: int, world: int, port: int) -> None:
    """In an `mp.spawn` worker: the environment torchrun would give rank `rank` of `world`."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )


SMALL_DISC = DiscriminatorConfig(filters=4, max_filters=8, n_ffts=(256, 64))


def clips(seconds: float = 0.32) -> torch.Tensor:
    """Two synthetic sounds: a decaying 220 Hz tone, a 440 Hz burst; [2, 1, T] at 24 kHz."""
    t = torch.arange(int(24_000 * seconds)) / 24_000
    tone = 0.5 * torch.sin(2 * math.pi * 220 * t) * torch.exp(-3 * t)
    burst = 0.3 * torch.sin(2 * math.pi * 440 * t + 1) * (t < 0.2)
    return torch.stack([tone, burst])[:, None]


def codec_config(tmp_path, **changes) -> CodecTrainConfig:
    """A codec training config for the tiny Mimi: 3 steps of 2 x 0.16 s, a small discriminator."""
    base = dict(
        run_dir=str(tmp_path / "run"),
        model=CodecModelConfig(mimi=TINY_MIMI),
        discriminator=SMALL_DISC,
        batch_size=2,
        duration_sec=0.16,
        max_steps=3,
        log_freq=1,
    )
    return CodecTrainConfig(**{**base, **changes})
