"""Shared test helpers (fixture loading, the issues' relative tolerance)."""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

FIXTURES = Path(__file__).parent / "fixtures"


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
