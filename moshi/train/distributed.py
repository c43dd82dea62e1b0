"""One process or many: torch.distributed from torchrun's environment variables.

`torchrun --nproc-per-node N -m moshi.train lm CONFIG.yaml` sets RANK, WORLD_SIZE and
LOCAL_RANK; without them training runs in one process. The backend is NCCL on GPUs, gloo
on CPUs. A model is replicated with DDP, or sharded with FSDP2 (`fully_shard`, each
transformer layer a unit) for full fine-tunes that do not fit on one device.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        """Sum over processes, in place (and returned)."""
        if self.enabled:
            dist.all_reduce(t)
        return t

    def any(self, flag: bool) -> bool:
        """True when `flag` is true in any process (every process must call it)."""
        t = torch.tensor([float(flag)], device=self.device)
        return bool(self.all_reduce(t).item() > 0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def init_distributed(device: str | None = None) -> Dist:
    """The process group from torchrun's variables (or a single process), and this process's
    device: `device` (cpu or cuda), default cuda when available (cuda:LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    kind = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {kind!r} was asked for, but no CUDA GPU is available")
    dev = torch.device(f"cuda:{local}" if kind == "cuda" else kind)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            "nccl" if dev.type == "cuda" else "gloo", device_id=dev if dev.type == "cuda" else None
        )
    return Dist(rank, world, local, dev)


def close_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(
    model: nn.Module, d: Dist, fsdp: bool, units: list[nn.Module], some_unused: bool = False
) -> nn.Module:
    """DDP (replicas; gradients averaged), or FSDP2 with each of `units` (e.g. the
    transformer layers) sharded on its own and the rest as the root unit. In one process
    without FSDP: the model itself. `some_unused`: some trainable parameters may get no
    gradient in a step (DDP then looks for them, at a cost)."""
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        if not d.enabled:
            raise ValueError("fsdp: true needs several processes (torchrun --nproc-per-node N)")
        # LMModel.forward returns views (text_logits); nothing changes them in place.
        warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")
        for unit in units:
            fully_shard(unit)
        fully_shard(model)
        return model
    if not d.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [d.device.index] if d.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=some_unused)
