"""Tiny models and data folders in moshi-finetune's layout (wav + json beside it, a .jsonl);
synthetic code datasets and configs for the trainer tests."""

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from moshi.codec import Mimi, load_mimi
from moshi.lm import LMModel, load_lm
from moshi.lm.config import KyutaiConfig
from moshi.train.alignments import AlignedWord, write_alignments
from tests.helpers import FIXTURES

SR = 24000
STT_CONFIG = {"audio_silence_prefix_seconds": 0.16, "audio_delay_seconds": 0.24}


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="package")
def mimi() -> Mimi:
    d = FIXTURES / "mimi_tiny"
    return load_mimi(d / "weights.safetensors", d / "config.json", num_codebooks=8)


def kyutai_config(name: str, **extra) -> KyutaiConfig:
    raw = json.loads((FIXTURES / name / "config.json").read_text())
    return KyutaiConfig.parse({**raw, **extra})


@pytest.fixture(scope="package")
def configs() -> dict[str, KyutaiConfig]:
    """The tiny models' configs, by task."""
    return {
        "dialogue": kyutai_config("moshi_lm_tiny"),
        # text_card 50 -> 100: the tokenizer's size (tiny_spm_100.model)
        "stt": kyutai_config("stt_lm_tiny", stt_config=STT_CONFIG, text_card=100),
        "tts": kyutai_config("tts_lm_tiny"),  # tts_config.audio_delay 0.32 s
    }


def tone(seconds: float, channels: int, rate: int = SR, seed: int = 0) -> np.ndarray:
    """[T, C] float32: a different noisy tone in each channel."""
    t = np.arange(round(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    pitches = 220 + 110 * np.arange(channels)[:, None]  # [C, 1]
    pcm = np.sin(2 * np.pi * pitches * t) + 0.2 * rng.standard_normal((channels, t.size))
    return (0.3 * pcm.T).astype(np.float32)


HI = (("hi", 0.1, 0.3),)  # default words: Moshi says "hi" at 0.1 s
Writer = Callable[..., Path]


@pytest.fixture
def data(tmp_path) -> Writer:
    """Write `name.wav` (and `name.json` unless words is None) under tmp_path/data; returns
    the wav's path. Add it to a manifest with `manifest(tmp_path, paths)`."""

    def write(
        name: str,
        seconds: float = 1.0,
        channels: int = 2,
        words: Sequence[tuple] | None = HI,
        rate: int = SR,
        seed: int = 0,
    ) -> Path:
        folder = tmp_path / "data"
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.wav"
        sf.write(path, tone(seconds, channels, rate, seed), rate)
        if words is not None:
            write_alignments(path.with_suffix(".json"), [AlignedWord(*w) for w in words])
        return path

    return write


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
