"""The one streaming contract shared by the codec and the LM.

A `StreamingModule` computes the same `forward` whether it sees a whole sequence at once
(offline, `state is None`) or the sequence chunk by chunk (streaming). While streaming it
carries a typed state between calls: conv buffers, KV caches, position offsets.

    with streaming(model, batch_size=2):     # every StreamingModule inside gets a fresh state
        y1 = model(x1)                       # chunk 1
        reset_streaming(model, 2, mask)      # restart some batch items (one server slot)
        set_exec_mask(model, 2, active)      # items with active=False keep their state as is
        y2 = model(x2)                       # chunk 2

States are per batch item, so one item can be reset or paused without touching the others.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

import torch
from torch import Tensor, nn


class StreamState(abc.ABC):
    """Per-batch-item state of one streaming module."""

    @abc.abstractmethod
    def reset(self, mask: Tensor | None) -> None:
        """Return the items where `mask` [B] (bool) is True, or all items when `mask` is
        None, to their initial state, in place."""


StateT = TypeVar("StateT", bound=StreamState)


def masked_fill_(t: Tensor, mask: Tensor | None, value: float) -> None:
    """`t[b] = value` for the batch items b selected by `mask` [B] (all when None)."""
    if mask is None:
        t.fill_(value)
    else:
        t.masked_fill_(mask.view(-1, *([1] * (t.dim() - 1))), value)


class StreamingModule(nn.Module, Generic[StateT]):
    """A module whose `forward` can run on consecutive chunks of a stream."""

    def __init__(self) -> None:
        super().__init__()
        self.state: StateT | None = None
        # [B] bool: which batch items advance on the next call (None: all of them).
        self.exec_mask: Tensor | None = None

    @abc.abstractmethod
    def init_state(self, batch_size: int) -> StateT:
        """A fresh state for `batch_size` streams, on this module's device."""

    def where_executing(self, new: Tensor, old: Tensor) -> Tensor:
        """`new` for the items that execute this call, `old` for the paused ones ([B, ...])."""
        if self.exec_mask is None:
            return new
        return torch.where(self.exec_mask.view(-1, *([1] * (new.dim() - 1))), new, old)


def streaming_modules(root: nn.Module) -> list[StreamingModule]:
    return [m for m in root.modules() if isinstance(m, StreamingModule)]


@contextmanager
def streaming(root: nn.Module, batch_size: int) -> Iterator[None]:
    """Put every streaming module under `root` in streaming mode for `batch_size` streams."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    modules = streaming_modules(root)
    if any(m.state is not None for m in modules):
        raise RuntimeError("already streaming: nested streaming() is not supported")
    for m in modules:
        m.state = m.init_state(batch_size)
        m.exec_mask = None
    try:
        yield
    finally:
        for m in modules:
            m.state = None
            m.exec_mask = None


def _check_mask(mask: Tensor | None, batch_size: int) -> None:
    if mask is None:
        return
    if mask.dtype != torch.bool or tuple(mask.shape) != (batch_size,):
        raise ValueError(
            f"mask must be a bool tensor of shape [B={batch_size}], got {mask.dtype} {tuple(mask.shape)}"
        )


def reset_streaming(root: nn.Module, batch_size: int, mask: Tensor | None = None) -> None:
    """Reset every stream (`mask` None) or the batch items where `mask` [B] is True."""
    _check_mask(mask, batch_size)
    modules = streaming_modules(root)
    if not any(m.state is not None for m in modules):
        raise RuntimeError("reset_streaming() called outside streaming()")
    for m in modules:
        if m.state is not None:
            m.state.reset(mask)


def set_exec_mask(root: nn.Module, batch_size: int, mask: Tensor | None) -> None:
    """Items where `mask` [B] is False keep their state unchanged on the following calls
    (their outputs are meaningless). `None` lets every item execute."""
    _check_mask(mask, batch_size)
    for m in streaming_modules(root):
        m.exec_mask = mask
