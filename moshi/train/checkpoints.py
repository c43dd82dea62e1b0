"""A run's checkpoints: `RUN_DIR/checkpoints/checkpoint_000100/`, each with

- `consolidated/`: what inference loads (the release layout the trainer writes: for the LM
  `model.safetensors` or `lora.safetensors`, and `config.json`);
- `state/`: what an exact resume needs: the trainer's state (weights in training precision,
  optimizer, schedule, data position) in `train_state.pt`, or sharded with
  torch.distributed.checkpoint in `train_state/` (FSDP), and each process's RNG states in
  `rng_RANK.pt`. A checkpoint is complete once `state/DONE` exists.

Resuming in fewer processes than wrote the checkpoint works: replicated state is saved once,
sharded state is resharded by torch.distributed.checkpoint, and a process without its own
RNG file takes rank 0's.
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from .distributed import Dist

CHECKPOINTS = "checkpoints"
_NAME = re.compile(r"^checkpoint_(\d{6,})$")


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / CHECKPOINTS / f"checkpoint_{step:06d}"


def complete_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of the complete checkpoints, oldest first."""
    root = run_dir / CHECKPOINTS
    found = []
    for p in root.iterdir() if root.is_dir() else ():
        m = _NAME.match(p.name)
        if m and (p / "state" / "DONE").is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(folder: Path, state: dict[str, Any], d: Dist, sharded: bool) -> None:
    """Every process calls this (after the consolidated files are written)."""
    target = folder / "state"
    if d.is_main:
        target.mkdir(parents=True, exist_ok=True)
    d.barrier()
    if sharded:
        import torch.distributed.checkpoint as dcp

        dcp.save(state, checkpoint_id=target / "train_state")
    elif d.is_main:
        torch.save(state, target / "train_state.pt")
    torch.save(rng_state(), target / f"rng_{d.rank}.pt")
    d.barrier()
    if d.is_main:
        (target / "DONE").write_text("")


def load_state(folder: Path, template: dict[str, Any], d: Dist) -> dict[str, Any]:
    """The saved state (a sharded one: loaded into `template`, whose tensors give this run's
    layout, sharded or not), and this process's RNG states restored."""
    target = folder / "state"
    if (target / "train_state").is_dir():
        import torch.distributed.checkpoint as dcp

        dcp.load(template, checkpoint_id=target / "train_state")
        state = template
    else:
        state = torch.load(target / "train_state.pt", map_location=d.device, weights_only=True)
    rng = target / f"rng_{d.rank}.pt"
    set_rng_state(torch.load(rng if rng.is_file() else target / "rng_0.pt", weights_only=True))
    return state


def prune(run_dir: Path, keep: int | None) -> None:
    """Delete all but the `keep` latest complete checkpoints (and incomplete older ones)."""
    if keep is None:
        return
    done = complete_checkpoints(run_dir)
    for _, folder in done[: max(0, len(done) - keep)]:
        shutil.rmtree(folder, ignore_errors=True)
