"""The LM's building blocks: float32 RMSNorm, SiLU-gated FFN, embeddings with a zero token."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.attention import Attention, SharedStep
from ..nn.linear import linear
from .cross_attention import CrossAttention

ZERO_TOKEN = -1  # embeds to an exact zero vector (a stream with nothing in it)
UNGENERATED_TOKEN = -2  # placeholder in the delay cache, never fed to the model


def rms_norm(x: Tensor, alpha: Tensor, eps: float) -> Tensor:
    """x * alpha / sqrt(mean(x^2) + eps) over the last dim, computed in float32, returned in
    x's dtype; alpha [D]."""
    if x.dtype != torch.float32 or alpha.dtype != torch.float32:
        return rms_norm(x.float(), alpha.float(), eps).to(x.dtype)
    # mean(x^2) as torch computes it (a sum, then a division). On a CPU the constants are
    # tensors made once: at batch 1 converting Python numbers costs more than the arithmetic.
    width: Tensor | float = float(x.shape[-1])
    eps_: Tensor | float = eps
    if x.device.type == "cpu":
        width, eps_ = _norm_constants(x.shape[-1], eps)
    return x * (alpha * (x * x).sum(dim=-1, keepdim=True).div_(width).add_(eps_).rsqrt_())


@functools.cache
def _norm_constants(width: int, eps: float) -> tuple[Tensor, Tensor]:
    # Made outside inference mode even when first asked for inside it (the generator's CPU
    # step): an inference tensor would break a later autograd-tracked `lm(codes)`.
    with torch.inference_mode(False):
        return torch.tensor(float(width), dtype=torch.float32, device="cpu"), torch.tensor(
            eps, dtype=torch.float32, device="cpu"
        )


class RMSNorm(nn.Module):
    """`rms_norm` with a learnt alpha (stored [1, 1, dim], as in Kyutai's checkpoints)."""

    def __init__(self, dim: int, eps: float = 1e-8):
        super().__init__()
        self.eps = eps
        self.alpha = nn.Parameter(torch.ones(1, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.alpha.view(-1), self.eps)


class Gating(nn.Module):
    """linear_out(silu(a) * b) where [a, b] = linear_in(x), a the first half."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.linear_in = nn.Linear(dim, 2 * hidden, bias=False)
        self.linear_out = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        a, b = linear(self.linear_in, x).chunk(2, dim=-1)
        return linear(self.linear_out, F.silu(a) * b)


class Embedding(nn.Embedding):
    """An embedding where ZERO_TOKEN (-1) gives an exact zero vector; other negative tokens
    are clamped to row 0 (as the reference does). Two options of Kyutai's TTS models:

    - `low_rank = r`: the table is [V, r] and `low_rank` (Linear r -> dim) widens its rows;
    - `demux`: each token carries two, a + V * (b + 1) with b = -1 for "none", and embeds to
      out1(row a) + out2(row b) (nothing for none). `low_rank`, when there is one, is then
      unused (the reference keeps it in its checkpoints, so it is kept here too).
    """

    def __init__(self, num_embeddings: int, dim: int, low_rank: int | None = None, demux: bool = False):
        width = dim if low_rank is None else low_rank
        super().__init__(num_embeddings, width)
        self.low_rank = None if low_rank is None else nn.Linear(width, dim, bias=False)
        self.out1 = nn.Linear(width, dim, bias=False) if demux else None
        self.out2 = nn.Linear(width, dim, bias=False) if demux else None

    def forward(self, tokens: Tensor, nonnegative: bool = False) -> Tensor:
        """tokens [...] int -> [..., dim]. `nonnegative`: the caller knows there is no
        negative token (the zero-token masking is then skipped)."""
        if nonnegative and self.out1 is None and self.low_rank is None:
            return F.embedding(tokens, self.weight)
        zero = (tokens == ZERO_TOKEN)[..., None]
        tokens = tokens.clamp(min=0)
        if self.out1 is not None and self.out2 is not None:
            second = tokens // self.num_embeddings - 1  # -1: no second token
            out = self.out1(super().forward(tokens % self.num_embeddings))
            rows = super().forward(second.clamp(min=0)).masked_fill((second < 0)[..., None], 0.0)
            out = out + self.out2(rows)
        else:
            out = super().forward(tokens)
            if self.low_rank is not None:
                out = self.low_rank(out)
        return out.masked_fill(zero, 0.0)


class TransformerLayer(nn.Module):
    """x + attn(norm1(x)), [x + cross_attention(norm_cross(x), source)], then
    x + gating(norm2(x)); [B, T, D]. The cross-attention block (TTS models) has a
    LayerNorm (eps 1e-5, weight and bias) whatever the other norms are."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        hidden: int,
        context: int,
        max_period: float,
        cross_attention: bool = False,
    ):
        super().__init__()
        self.norm1 = RMSNorm(dim)
        self.self_attn = Attention(dim, num_heads, context, rope_max_period=max_period)
        self.norm_cross: nn.LayerNorm | None = None
        self.cross_attention: CrossAttention | None = None
        if cross_attention:
            self.norm_cross = nn.LayerNorm(dim, eps=1e-5)
            self.cross_attention = CrossAttention(dim, num_heads)
        self.norm2 = RMSNorm(dim)
        self.gating = Gating(dim, hidden)

    def forward(
        self, x: Tensor, cross_source: Tensor | None = None, shared: SharedStep | None = None
    ) -> Tensor:
        """x [B, T, D]; cross_source [B, S, D] offline (None while streaming: cached);
        shared: positions, RoPE and mask common to the layers of one call."""
        x = x + self.self_attn(self.norm1(x), shared)
        if self.cross_attention is not None and self.norm_cross is not None:
            x = x + self.cross_attention(self.norm_cross(x), cross_source)
        return x + self.gating(self.norm2(x))
