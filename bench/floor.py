"""The memory floor of a streaming step: weight bytes read per call ÷ streaming bandwidth.

    from floor import Floor            # bench/ is on sys.path for its scripts
    floor = Floor.measure()            # once per run: best of a few big tensor sums
    nbytes = weight_bytes(lambda: model.step(x), model)   # one call, counted
    floor.line(ms, nbytes)             # {"floor_ms", "floor_ratio", "weight_mb", "bandwidth_gbs"}

At batch 1 a step reads every weight it multiplies by once and does little arithmetic on
each, so no implementation can beat the time it takes to stream those bytes from memory.
`weight_bytes` counts them by watching one call (a dispatch mode): every tensor that
belongs to the model (its parameters, buffers and tensor attributes, e.g. an int8 copy or
a packed layout) and that an operator reads, once per storage region; for a row lookup
(embedding, index_select) only the rows it returns. Whatever dtype the weights are in,
their bytes are what is counted, so int8 and bfloat16 steps get their own, lower floor.

Not counted: activations, KV caches and streaming states (small at batch 1, or not
weights). Convolutions on 24 kHz audio (Mimi's SEANet) do far more arithmetic per weight
than a matrix-vector product: their floor is compute, not bytes (see README, Numbers).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

BANDWIDTH_BYTES = 512 << 20  # much bigger than any last-level cache
BANDWIDTH_REPEATS = 5
ROW_LOOKUPS = {torch.ops.aten.embedding.default, torch.ops.aten.index_select.default}
ROW_LOOKUPS |= {torch.ops.aten.index.Tensor}


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), or the platform's processor string."""
    info = Path("/proc/cpuinfo")
    if info.is_file():
        m = re.search(r"^model name\s*:\s*(.+)$", info.read_text(), re.M)
        if m:
            return m.group(1).strip()
    import platform

    return platform.processor() or "unknown"


def measure_bandwidth(nbytes: int = BANDWIDTH_BYTES, repeats: int = BANDWIDTH_REPEATS) -> float:
    """Streaming read bandwidth in bytes/s at the current thread count: the best of
    `repeats` sums of an `nbytes` float32 tensor (a sum reads every byte once)."""
    x = torch.ones(nbytes // 4)
    best = float("inf")
    for _ in range(repeats + 1):  # the first pass faults the pages in
        t0 = time.perf_counter()
        x.sum()
        best = min(best, time.perf_counter() - t0)
    return nbytes / best


def _address(t: Tensor) -> int:
    """Where a tensor's storage is; its id for opaque tensors (e.g. mkldnn's packed
    weights), which have no storage to look at."""
    try:
        return t.untyped_storage().data_ptr()
    except NotImplementedError:
        return id(t)


def _model_tensors(root: nn.Module) -> set[int]:
    """The addresses (`_address`) of every tensor the model holds: parameters, buffers and
    plain tensor attributes (derived weights kept outside the state dict)."""
    found: set[int] = set()
    for module in root.modules():
        tensors = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
        tensors += [v for v in vars(module).values() if isinstance(v, Tensor)]
        found |= {_address(t) for t in tensors}
    return found


class WeightReads(TorchDispatchMode):
    """A context that counts the bytes of the `models`' weights read inside it (each
    storage region once): `with WeightReads(model) as reads: step(); reads.nbytes`."""

    def __init__(self, *models: nn.Module):
        super().__init__()
        self.storages: set[int] = set()
        for m in models:
            self.storages |= _model_tensors(m)
        self.regions: set[tuple[int, int]] = set()  # (address, nbytes) read
        self.rows = 0  # bytes of looked-up rows

    @property
    def nbytes(self) -> int:
        return sum(n for _, n in self.regions) + self.rows

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        flat = [*args, *(kwargs or {}).values()]
        flat += [t for a in flat if isinstance(a, (list, tuple)) for t in a]
        for t in flat:
            if not isinstance(t, Tensor) or t.device.type == "meta" or _address(t) not in self.storages:
                continue
            if func in ROW_LOOKUPS and t.dim() >= 2:
                self.rows += out.numel() * out.element_size() if isinstance(out, Tensor) else 0
            else:
                start = t.data_ptr() if t.layout == torch.strided else id(t)
                self.regions.add((start, t.numel() * t.element_size()))
        return out


def weight_bytes(call: Callable[[], object], *models: nn.Module) -> int:
    """Bytes of the `models`' weights that one `call()` reads (each region once)."""
    with torch.no_grad(), WeightReads(*models) as reads:
        call()
    return reads.nbytes


@dataclass(frozen=True)
class Floor:
    """The machine's streaming bandwidth (bytes/s), measured once per run."""

    bandwidth: float

    @classmethod
    def measure(cls, nbytes: int = BANDWIDTH_BYTES) -> Floor:
        return cls(measure_bandwidth(nbytes))

    def ms(self, nbytes: int) -> float:
        return 1000 * nbytes / self.bandwidth

    def line(self, ms: float, nbytes: int) -> dict:
        """The floor fields of a JSON line for a step of `ms` that reads `nbytes` of weights."""
        floor = self.ms(nbytes)
        return dict(
            weight_mb=round(nbytes / 1e6, 1),
            bandwidth_gbs=round(self.bandwidth / 1e9, 1),
            floor_ms=round(floor, 2),
            floor_ratio=round(ms / floor, 2) if floor > 0 else None,
        )
