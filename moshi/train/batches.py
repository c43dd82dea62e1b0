"""Which items each step reads, the same however the batch is split.

Epoch e visits the dataset in a permutation seeded by (seed, e) (or in order without
`shuffle`). A step takes `microbatches` global batches of `batch_size x world_size` items
in turn; process r reads its `batch_size` slice of each. So 2 processes x batch b read,
together, exactly what 1 process x batch 2b reads. The position (epoch, cursor) is part of
the training state: a resumed run reads what the uninterrupted one would have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import Tensor


class CodesDataset(Protocol):
    """Items [K, T] int64 (-1 where undefined), e.g. moshi.train.dataset.LMDataset."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> Tensor: ...


class Batches:
    def __init__(
        self,
        dataset: CodesDataset,
        batch_size: int,
        rank: int,
        world_size: int,
        seed: int,
        shuffle: bool,
        set_epoch: bool = True,
    ):
        """`set_epoch`: tell the dataset each new epoch (its random crops); off for a pass
        that must leave the dataset as it is (evaluating on the training set)."""
        if len(dataset) == 0:
            raise ValueError("the dataset has no items (see the warnings about skipped files)")
        self.dataset, self.batch_size, self.rank, self.world_size = dataset, batch_size, rank, world_size
        self.seed, self.shuffle, self.set_epoch = seed, shuffle, set_epoch
        self.epoch, self.cursor = 0, 0
        self._order: list[int] | None = None

    def _indices(self) -> list[int]:
        if self._order is None:
            n = len(self.dataset)
            if self.shuffle:
                g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
                self._order = torch.randperm(n, generator=g).tolist()
            else:
                self._order = list(range(n))
            set_epoch = getattr(self.dataset, "set_epoch", None)
            if set_epoch is not None and self.set_epoch:
                set_epoch(self.epoch)
        return self._order

    def _next_index(self) -> int:
        order = self._indices()
        if self.cursor == len(order):
            self.epoch, self.cursor, self._order = self.epoch + 1, 0, None
            order = self._indices()
        self.cursor += 1
        return order[self.cursor - 1]

    def next(self) -> Tensor:
        """This process's slice of the next global batch: [batch_size, K, T]."""
        ids = [self._next_index() for _ in range(self.batch_size * self.world_size)]
        mine = ids[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        return stack([self.dataset[i] for i in mine])

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.cursor, self._order = int(state["epoch"]), int(state["cursor"]), None


def stack(items: Sequence[Tensor]) -> Tensor:
    """Items [K, T_i] -> [B, K, max T_i], padded with -1 (undefined)."""
    T = max(x.shape[-1] for x in items)
    out = torch.full((len(items), items[0].shape[0], T), -1, dtype=torch.int64)
    for b, x in enumerate(items):
        out[b, :, : x.shape[-1]] = x
    return out
