"""Classifier-free guidance: the option, and how an item's two batch rows pair up.

With guidance each of the B items takes two batch rows of the model: row b (conditioned)
and row B + b (null: every condition dropped). The logits of every audio codebook are
null + (cond - null) * coef. The text logits are guided the same way, unless
`guide_text=False` (what Kyutai's TTS does): then the null rows' text input is the zero
token and the text comes from the conditioned rows alone. `coef == 1` is no guidance: one
row per item, nothing doubled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .conditioners import ConditionValues, drop_all
from .layers import ZERO_TOKEN

MAX_GUIDANCE = 100.0


@dataclass(frozen=True)
class Guidance:
    """How strongly generation follows the conditions (1: plainly, no guidance)."""

    coef: float = 1.0
    guide_text: bool = True  # False: the text logits are the conditioned rows' alone

    def __post_init__(self) -> None:
        c = self.coef
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0.0 <= c <= MAX_GUIDANCE:
            raise ValueError(f"guidance coef must be a number in [0, {MAX_GUIDANCE}], got {c!r}")
        if not isinstance(self.guide_text, bool):
            raise ValueError(f"guide_text must be a bool, got {self.guide_text!r}")

    @property
    def rows_per_item(self) -> int:
        return 1 if self.coef == 1.0 else 2

    @property
    def text_from_conditioned(self) -> bool:
        """Whether the text logits are those of the conditioned rows [:B] as they are."""
        return self.rows_per_item == 1 or not self.guide_text

    def rows(self, items: list[int], batch_size: int) -> list[int]:
        """The batch rows of these items: each item's conditioned row, then its null row."""
        return items if self.rows_per_item == 1 else items + [b + batch_size for b in items]

    def row_mask(self, mask: Tensor | None) -> Tensor | None:
        """An item mask [B] as a batch-row mask [R] (each item's rows)."""
        return mask if mask is None or self.rows_per_item == 1 else mask.repeat(2)

    def conditions(self, conditions: Sequence[ConditionValues]) -> list[ConditionValues]:
        """Per item conditions -> per row, in the order of `rows`: the null rows drop all."""
        values = list(conditions)
        return values if self.rows_per_item == 1 else values + [drop_all(v) for v in conditions]

    def model_inputs(self, inputs: Tensor) -> Tensor:
        """inputs [B, 1 + n_q, 1] -> the model's batch rows [R, 1 + n_q, 1]."""
        if self.rows_per_item == 1:
            return inputs
        null = inputs.clone()
        if not self.guide_text:
            null[:, 0] = ZERO_TOKEN
        return torch.cat([inputs, null])

    def combine(self, logits: Tensor) -> Tensor:
        """logits [R, V] -> [B, V]: null + (cond - null) * coef."""
        if self.rows_per_item == 1:
            return logits
        cond, null = logits.chunk(2)
        return null + (cond - null) * self.coef

    def text_logits(self, logits: Tensor, batch_size: int) -> Tensor:
        """The text logits [R, V] -> [B, V] to sample from."""
        return logits[:batch_size] if not self.guide_text else self.combine(logits)
