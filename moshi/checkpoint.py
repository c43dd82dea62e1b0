"""Reading weight files and loading them into a module, with errors that name the problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn


def read_state_dict(path: Path, device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """Tensors of a `.safetensors` file (or a torch `.pt`/`.th` checkpoint)."""
    if path.suffix in (".pt", ".th", ".pth", ".bin"):
        try:
            pkg = torch.load(path, map_location=device, weights_only=True)
        except Exception as e:
            raise ValueError(f"{path} is not a readable torch checkpoint: {e}") from e
        if isinstance(pkg, dict) and isinstance(pkg.get("model"), dict):
            pkg = pkg["model"]
        if not isinstance(pkg, dict) or not all(isinstance(v, Tensor) for v in pkg.values()):
            raise ValueError(f"{path} does not hold a state dict of tensors")
        return pkg
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path} is not a safetensors file: {e}") from e


def load_into(
    model: nn.Module,
    state: dict[str, Tensor],
    rename: Callable[[str], str],
    dtype: torch.dtype | None,
    source: str,
) -> None:
    """Load `state` (checkpoint names mapped by `rename`) into `model`, strictly, with
    `assign=True` (so a model built on `meta` gets real tensors). Float tensors are cast
    to `dtype` unless it is None."""
    mapped: dict[str, Tensor] = {}
    for key, value in state.items():
        ours = rename(key)
        if ours in mapped:
            raise ValueError(f"{source}: two tensors map to {ours!r} (one is {key!r})")
        mapped[ours] = value.to(dtype) if dtype is not None and value.is_floating_point() else value
    expected = model.state_dict(keep_vars=True)
    missing = sorted(set(expected) - set(mapped))
    unexpected = sorted(k for k in state if rename(k) not in expected)
    wrong = [
        f"{k}: expected {list(expected[k].shape)}, found {list(v.shape)}"
        for k, v in mapped.items()
        if k in expected and v.shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_few(unexpected)}")
    if wrong:
        problems.append(f"shape mismatches ({len(wrong)}): {_few(wrong)}")
    if problems:
        raise ValueError(f"{source} does not fit this model: " + "; ".join(problems))
    model.load_state_dict(mapped, strict=True, assign=True)


def _few(items: list[str], n: int = 6) -> str:
    more = f", ... ({len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more
