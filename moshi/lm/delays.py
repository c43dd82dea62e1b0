"""The delay ring: the last few tokens of every stream, to apply the delays and undo them.

Stream s is read `delays[s]` steps late. Per item the ring keeps C = max_delay + 2
columns of tokens, [B, S, C], and a step counter `offset` [B]; column `offset % C` is the
read position. The user's tokens of step t are written `delays[s]` columns ahead of it, so
that they are read at step t + delays[s]. What the model samples at step t is already
delayed (stream s samples the token of frame t - delays[s]): it is written at the read
position of step t + 1, where the model reads it back as its next input, and a frame is
complete `max_delay` steps after its first token: `frame` gathers it with the delays undone.
Columns never written hold `UNGENERATED_TOKEN`; a stream that has not started yet
(offset <= delay) reads its initial token instead.

Every write takes the step's execute mask [B] (None: every item runs): paused items keep
their tokens and their counters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .layers import UNGENERATED_TOKEN


class DelayRing:
    """Tokens [B, S, C] written `delay` columns ahead, read back with the delays undone."""

    def __init__(self, delays: Sequence[int], initial: Tensor, batch_size: int):
        """delays: one per stream (S); initial [S]: the token each stream starts from."""
        device = initial.device
        self.delays = torch.tensor(delays, device=device)  # [S]
        self.max_delay = max(delays)
        self.initial = initial[None, :, None]  # [1, S, 1]
        self.cache = torch.full(
            (batch_size, len(delays), self.max_delay + 2), UNGENERATED_TOKEN, device=device
        )  # [B, S, C]
        self.offset = torch.zeros(batch_size, dtype=torch.long, device=device)  # [B] steps done
        self.steps = [0] * batch_size  # the same, as Python ints (decides without a device sync)

    def write_ahead(self, first: int, tokens: Tensor, mask: Tensor | None) -> None:
        """Streams `first`: (the user's) get this step's tokens [B, S - first, 1], each
        `delay` columns ahead of the read position."""
        C = self.cache.shape[-1]
        streams = self.cache[:, first:]  # a view: scatter writes into the cache
        cols = ((self.offset[:, None] + self.delays[None, first:]) % C)[..., None]
        new = tokens.to(self.cache.dtype)
        if mask is not None:
            new = torch.where(mask[:, None, None], new, streams.gather(2, cols))
        streams.scatter_(2, cols, new)

    def read(self) -> Tensor:
        """This step's input [B, S, 1]; streams that have not started see their initial token."""
        B, S, C = self.cache.shape
        inputs = self.cache.gather(2, (self.offset % C)[:, None, None].expand(B, S, 1))
        not_started = (self.offset[:, None] <= self.delays[None, :])[..., None]
        return torch.where(not_started, self.initial, inputs)

    def advance(self, mask: Tensor | None, executing: list[bool]) -> None:
        """The running items (`mask` [B] and `executing`: the same, on the device and as
        Python bools) move to the next step."""
        self.offset.add_(1 if mask is None else mask.long())
        for b, e in enumerate(executing):
            self.steps[b] += e

    def write_sampled(self, tokens: Tensor, mask: Tensor | None) -> None:
        """Streams :n get what the model sampled this step, tokens [B, n, 1], at the read
        position of the next step (call after `advance`)."""
        B, n, _ = tokens.shape
        cols = (self.offset % self.cache.shape[-1])[:, None, None].expand(B, n, 1)
        streams = self.cache[:, :n]
        new = tokens if mask is None else torch.where(mask[:, None, None], tokens, streams.gather(2, cols))
        streams.scatter_(2, cols, new)

    def frame(self, n: int, executing: list[bool], missing: int) -> Tensor | None:
        """Streams :n of the newest complete frame, delays undone: [B, n, 1], `missing` for
        items without one (still filling, or paused); None when no item has one."""
        if all(t <= self.max_delay for t in self.steps):
            return None
        C = self.cache.shape[-1]
        cols = ((self.offset[:, None] - self.max_delay + self.delays[None, :n]) % C)[..., None]
        tokens = self.cache[:, :n].gather(2, cols)  # [B, n, 1]
        ready = torch.tensor(
            [t > self.max_delay and e for t, e in zip(self.steps, executing, strict=True)],
            device=self.cache.device,
        )
        return torch.where(ready[:, None, None], tokens, missing)

    def reset(self, items: Sequence[int]) -> None:
        """These items start again from step 0."""
        for b in items:
            self.cache[b] = UNGENERATED_TOKEN
            self.offset[b] = 0
            self.steps[b] = 0
