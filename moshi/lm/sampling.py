"""Token sampling: temperature, top-k, then a draw that needs no device sync.

The draw is argmax(p / E) with E ~ Exp(1) i.i.d.: this picks index i with probability p_i
(the "exponential race"), without `torch.multinomial`'s host round-trip. It is computed in
logs, argmax(logit / temp - log E), so the softmax's normalisation is never needed. Each batch item
has its own `torch.Generator`, so a conversation's tokens depend only on its own seed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

import torch
from torch import Tensor

if TYPE_CHECKING:
    from typing_extensions import Unpack

MAX_TEMPERATURE = 5.0


class SamplingKeywords(TypedDict, total=False):
    """`SamplingOptions`' fields as keywords, and `seed` for both seeds."""

    temp: float
    top_k: int
    temp_text: float
    top_k_text: int
    text_seed: int | None
    audio_seed: int | None
    seed: int | None


@dataclass(frozen=True)
class SamplingOptions:
    """Per-conversation sampling settings, checked once here (a `ValueError` names the
    field, what it takes and what it got). Temperature 0 means greedy (argmax); top-k 0
    (or above the vocabulary size) means the whole vocabulary. Seeds make a conversation
    reproducible (None: random)."""

    temp: float = 0.8  # audio tokens
    top_k: int = 250
    temp_text: float = 0.7
    top_k_text: int = 25
    text_seed: int | None = None
    audio_seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("temp", "temp_text"):
            value = getattr(self, name)
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not 0.0 <= value <= MAX_TEMPERATURE
            ):
                raise ValueError(f"{name} must be a number in [0, {MAX_TEMPERATURE}], got {value!r}")
        for name in ("top_k", "top_k_text"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        for name in ("text_seed", "audio_seed"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or not 0 <= value < 2**63):
                raise ValueError(f"{name} must be an integer in [0, 2**63), got {value!r}")

    def replace(self, **changes: Unpack[SamplingKeywords]) -> SamplingOptions:
        """These options with some fields changed (checked again); `seed` sets both seeds.

        SamplingOptions().replace(temp=0.6, seed=42)"""
        fields: dict[str, Any] = dict(changes)
        if "seed" in fields:
            seed = fields.pop("seed")
            fields = {"text_seed": seed, "audio_seed": seed, **fields}
        return dataclasses.replace(self, **fields)


def make_generator(seed: int | None, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(seed)
    return g


def sample(
    logits: Tensor, temps: list[float], top_ks: list[int], generators: list[torch.Generator]
) -> Tensor:
    """One token per batch item: logits [B, V] -> [B] (int64).

    temps, top_ks, generators: one per item, as Python values so that no device sync is
    needed. Item b draws exactly top_k[b] exponentials from its own generator (none when
    it is greedy), so its tokens do not depend on the other items of the batch."""
    B, V = logits.shape
    logits = logits.float()
    greedy = [t <= 0 for t in temps]
    if all(greedy):
        return logits.argmax(dim=-1)
    ks = [k if 0 < k <= V else V for k in top_ks]
    kmax = max(ks)
    values, idx = logits.topk(kmax, dim=-1)  # [B, kmax], sorted
    # argmax(p / E) over the top k, in logs: p_i is exp(value_i / temp) up to a common
    # factor (no softmax needed), and -log E is Gumbel noise.
    if B == 1:  # (the common case, in fewer operations)
        noise = torch.empty_like(values).exponential_(generator=generators[0])
    else:
        noise = values.new_ones(B, kmax)
        for b, (k, g) in enumerate(zip(ks, generators, strict=True)):
            if not greedy[b]:  # greedy items draw nothing
                noise[b, :k].exponential_(generator=g)
    if len(set(temps)) == 1:
        scores = values / temps[0]
    else:
        scores = values / torch.tensor([t if t > 0 else 1.0 for t in temps], device=logits.device)[:, None]
    scores.sub_(noise.log_())
    if min(ks) < kmax:
        outside = torch.arange(kmax, device=logits.device) >= torch.tensor(ks, device=logits.device)[:, None]
        scores = scores.masked_fill(outside, float("-inf"))
    tokens = idx.gather(1, scores.argmax(dim=1, keepdim=True)).squeeze(1)
    if not any(greedy):
        return tokens
    return torch.where(torch.tensor(greedy, device=logits.device), logits.argmax(dim=-1), tokens)
