"""The fixture files (tests/fixtures), tiny model folders laid out as Kyutai's repos, a fake
Hugging Face cache, and the issues' relative tolerance."""

import json
import shutil
import socket
from pathlib import Path

import torch
from safetensors.torch import load_file

FIXTURES = Path(__file__).parents[1] / "fixtures"
MIMI_TINY = FIXTURES / "mimi_tiny"
MOSHI_TINY = FIXTURES / "moshi_lm_tiny"
STT_TINY = FIXTURES / "stt_lm_tiny"
TTS_TINY = FIXTURES / "tts_lm_tiny"  # CFG distilled into a `cfg` condition
TTS_CFG_TINY = FIXTURES / "tts_cfg_lm_tiny"  # real CFG (doubled batch)
TTS_16B_TINY = FIXTURES / "tts_16b_lm_tiny"  # the released 1.6B's features: second text stream...
TOKENIZER = FIXTURES / "tiny_spm_100.model"  # 100 pieces
SPEECH = FIXTURES / "hello_24k.wav"  # 6.9 s of espeak-ng speech, 24 kHz mono
STT_CONFIG = {"audio_silence_prefix_seconds": 0.16, "audio_delay_seconds": 0.24}  # for stt_lm_tiny


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """Max-abs error relative to the reference's max-abs value (the issues' tolerance)."""
    return ((ours.float() - ref.float()).abs().max() / ref.float().abs().max()).item()


def fixture_io(name: str) -> dict[str, torch.Tensor]:
    return load_file(FIXTURES / name / "io.safetensors")


def save_weights(folder: Path, state: dict[str, torch.Tensor], name: str = "weights.safetensors") -> Path:
    """Write a state dict as a safetensors file in `folder`; returns its path."""
    from safetensors.torch import save_file

    path = folder / name
    save_file(state, str(path))
    return path


def config_of(folder: Path, **changes: object) -> dict:
    """A model folder's config.json as a dict, `changes` over its top-level keys."""
    return json.loads((folder / "config.json").read_text()) | changes


def fixture_meta(name: str) -> dict:
    return json.loads((FIXTURES / name / "io.json").read_text())


def fake_hub_cache(
    root: Path, monkeypatch, repo: str, files: dict[str, Path | bytes], absent: tuple[str, ...] = ()
) -> None:
    """Lay out a Hugging Face cache holding `files` of `repo` and force offline mode, so
    `huggingface_hub.hf_hub_download` resolves them from disk exactly as from a real cache.
    `absent`: files the hub said the repo does not have (as a real cache remembers them)."""
    import huggingface_hub.constants as hf_constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    for name, content in files.items():
        target = snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else Path(content).read_bytes())
    for name in absent:
        marker = repo_dir / ".no_exist" / commit / name
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)


def tiny_model_dir(dst: Path, lm: Path = MOSHI_TINY, **config: object) -> Path:
    """A model folder as on the hub: `lm`'s weights, the tiny Mimi, the tokenizer, and a
    config.json (`lm`'s, updated with `config`) naming the files beside it; returns the
    config.json's path."""
    dst.mkdir(parents=True, exist_ok=True)
    files = {
        "moshi_name": ("lm.safetensors", lm / "weights.safetensors"),
        "mimi_name": ("mimi.safetensors", MIMI_TINY / "weights.safetensors"),
        "mimi_config_name": ("mimi_config.json", MIMI_TINY / "config.json"),
        "tokenizer_name": ("tokenizer.model", TOKENIZER),
    }
    kyutai = config_of(lm)
    for key, (name, src) in files.items():
        shutil.copy(src, dst / name)
        kyutai[key] = name
    (dst / "config.json").write_text(json.dumps(kyutai | config))
    return dst / "config.json"


def files_under(path: Path) -> list[Path]:
    """Every file below `path`, sorted."""
    return sorted(p for p in path.rglob("*") if p.is_file())


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server or a process group)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
