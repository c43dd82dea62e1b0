"""Tiny model folders laid out as Kyutai's repos (config.json naming the files beside it),
short speech files, and a way to run `moshi ...` in-process and see what it printed."""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from moshi.cli.main import main
from tests.helpers import FIXTURES

SR = 24000
STT_CONFIG = {"audio_silence_prefix_seconds": 0.16, "audio_delay_seconds": 0.24}


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread():
    """The tiny models gain nothing from more threads, and two OpenMP threads collapse
    (steps 10x slower) when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def model_dir(root: Path, lm: str, extra: dict) -> Path:
    """A folder laid out as a Kyutai repo, for the tiny LM fixture `lm`; returns its config.json."""
    root.mkdir(parents=True)
    shutil.copy(FIXTURES / lm / "weights.safetensors", root / "lm.safetensors")
    shutil.copy(FIXTURES / "mimi_tiny" / "weights.safetensors", root / "mimi.safetensors")
    shutil.copy(FIXTURES / "mimi_tiny" / "config.json", root / "mimi_config.json")
    shutil.copy(FIXTURES / "tiny_spm_100.model", root / "tokenizer.model")
    config = json.loads((FIXTURES / lm / "config.json").read_text())
    config.update(
        moshi_name="lm.safetensors",
        mimi_name="mimi.safetensors",
        mimi_config_name="mimi_config.json",
        tokenizer_name="tokenizer.model",
        **extra,
    )
    (root / "config.json").write_text(json.dumps(config))
    return root / "config.json"


@pytest.fixture(scope="session")
def dialogue_model(tmp_path_factory) -> list[str]:
    """Flags selecting the tiny dialogue model (offline, CPU)."""
    config = model_dir(tmp_path_factory.mktemp("models") / "moshi", "moshi_lm_tiny", {"model_type": "moshi"})
    return ["--config", str(config), "--device", "cpu"]


@pytest.fixture(scope="session")
def stt_model(tmp_path_factory) -> list[str]:
    """Flags selecting the tiny speech-to-text model (offline, CPU)."""
    config = model_dir(
        tmp_path_factory.mktemp("models") / "stt",
        "stt_lm_tiny",
        {"model_type": "stt", "stt_config": STT_CONFIG},
    )
    return ["--config", str(config), "--device", "cpu"]


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """6.9 s of espeak-ng speech, 24 kHz mono float32."""
    pcm, sr = sf.read(FIXTURES / "hello_24k.wav", dtype="float32")
    assert sr == SR
    return pcm


@pytest.fixture
def wav(tmp_path, speech):
    """Write `seconds` of the speech (from `start`) as a file; returns its path."""

    def make(name: str = "talk.wav", seconds: float = 0.6, start: float = 0.5) -> Path:
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        sf.write(path, speech[int(start * SR) : int((start + seconds) * SR)], SR)
        return path

    return make


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def moshi(capsys):
    """Run `moshi ARGS...` in-process: its exit code, stdout and stderr."""

    def run(*args: object) -> Result:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse
            code = e.code if isinstance(e.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())
