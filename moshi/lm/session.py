"""What one `Generator` streaming session holds: per-item state, and who runs each step."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..nn import streaming as st
from .delays import DelayRing
from .depformer import FrameCache, SubStep
from .guidance import Guidance
from .model import LMModel
from .sampling import SamplingOptions, make_generator


class ExecMask:
    """Which items run the next steps: the one owner of the per-item execute mask.

    `items` [B] as Python bools (decisions without a device sync) and `tensor` [B] on the
    device (None while every item runs) are kept together; the model's streaming modules
    get the batch-row mask [R] derived from them (R = B, 2B with guidance). With CUDA
    graphs that row mask is one tensor at a fixed address, which the graphs read."""

    def __init__(self, model: LMModel, batch_size: int, guidance: Guidance, fixed_address: bool):
        self.model, self.batch_size, self.guidance = model, batch_size, guidance
        self.rows = batch_size * guidance.rows_per_item
        self.items = [True] * batch_size
        self.tensor: Tensor | None = None
        self._fixed: Tensor | None = None
        if fixed_address:
            self._fixed = torch.ones(self.rows, dtype=torch.bool, device=model.device)
            st.set_exec_mask(model, self.rows, self._fixed)

    def set(self, mask: Tensor | None) -> None:
        """Items where `mask` [B] (bool) is False are paused; None runs them all."""
        row_mask = self.row_mask(mask)
        if self._fixed is None:
            st.set_exec_mask(self.model, self.rows, row_mask)
        else:
            st.set_exec_mask(self.model, self.rows, self._fixed)  # checks, keeps the address
            self._fixed.fill_(True) if row_mask is None else self._fixed.copy_(row_mask)
        self.items = [True] * self.batch_size if mask is None else [bool(m) for m in mask.tolist()]
        self.tensor = None if all(self.items) else torch.tensor(self.items, device=self.model.device)

    def row_mask(self, mask: Tensor | None) -> Tensor | None:
        """An item mask [B] -> the batch-row mask [R], checked."""
        if mask is not None and (mask.dtype != torch.bool or tuple(mask.shape) != (self.batch_size,)):
            raise ValueError(
                f"mask must be a bool tensor of shape [B={self.batch_size}], "
                f"got {mask.dtype} {list(mask.shape)}"
            )
        return self.guidance.row_mask(mask)


@dataclass
class Session:
    """The state of one streaming session over B items (R batch rows)."""

    batch_size: int
    ring: DelayRing  # the streams' tokens, with the step counters
    executing: ExecMask
    options: list[SamplingOptions]  # per item
    text_rngs: list[torch.Generator]
    audio_rngs: list[torch.Generator]
    frame: FrameCache  # the depformer's attention cache, reused every step
    plan: list[SubStep]  # the depformer's weights per sub-step
    cond_sum: Tensor | None = None  # [R, 1, dim] summed conditions, added to every step's input

    @classmethod
    def start(
        cls, model: LMModel, batch_size: int, options: SamplingOptions, guidance: Guidance, graphs: bool
    ) -> Session:
        config, device = model.config, model.device
        rows = batch_size * guidance.rows_per_item
        return cls(
            batch_size=batch_size,
            ring=DelayRing(config.delays, model.initial_tokens(), batch_size),
            executing=ExecMask(model, batch_size, guidance, graphs),
            options=[options] * batch_size,
            text_rngs=[make_generator(options.text_seed, device) for _ in range(batch_size)],
            audio_rngs=[make_generator(options.audio_seed, device) for _ in range(batch_size)],
            frame=FrameCache.empty(config, rows, torch.empty(0, dtype=model.dtype, device=device)),
            plan=model.depformer_plan(),
        )

    def seed(self, b: int) -> None:
        """Item b's random generators, seeded again from its options."""
        o, device = self.options[b], self.ring.cache.device
        self.text_rngs[b] = make_generator(o.text_seed, device)
        self.audio_rngs[b] = make_generator(o.audio_seed, device)
