"""The exact top-k rows of a big linear head, reading half its float32 weight.

Sampling the text token needs only the k largest text logits (top-k sampling; k = 1 when
greedy), yet computing all of them reads the whole float32 `text_linear` weight, which at
batch 1 on a CPU is a memory-bound 64 MB per step for the 105M-parameter model.
`TopKHead` reads a bfloat16 copy instead, then recomputes in float32 only the rows that can
still be in the top k:

    approx_i   = bf16(x) . bf16(W_i)                  (all V rows, half the bytes)
    |exact_i - approx_i| <= b_i                       (a proven bound, below)
    candidates = {i : approx_i + b_i >= k-th largest of (approx - b)}
    logits     = x . W_c in float32 for c in candidates   (a few dozen rows)

Every row of the top k is a candidate: such a row has exact_i >= (k-th largest exact) >=
(k-th largest of approx - b), and approx_i + b_i >= exact_i. So the candidates' top k are
the full product's, and sampling from them draws the same token. With dx = x - bf16(x),
dW_i = W_i - bf16(W_i), float32 sums of D products within D * 2^-24 of the sum of their
magnitudes, and the bfloat16 result within 2^-9 of its value:

    b_i = |x| |dW_i| + |dx| |bf16(W_i)| + D * 2^-22 * |x| |W_i| + 2^-8 |approx_i|

(norms are Euclidean; the float32 term is doubled, covering the candidates' own products
and the rounding of bf16(x)'s norm). Candidates are padded to at least `MIN_ROWS` rows: at
that many rows MKL takes the same kernel as for the whole product, so the logits come out
bit-identical here (tests/kernels/test_topk_head.py checks that too).

`TopKHead.build` returns None where this does not pay (no native bfloat16 matrix products
on this CPU, not a float32 CPU weight, a small vocabulary); callers then compute all logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

MIN_VOCAB = 4096  # below this, the float32 product is cheap anyway
MIN_ROWS = 64
_BF16_OUT = 2.0**-8  # relative bound on the rounding of the bfloat16 product's result


def weight_key(weight: Tensor) -> tuple:
    """What identifies a weight's values: its storage, shape, dtype and in-place writes."""
    return (weight.data_ptr(), tuple(weight.shape), weight.dtype, weight.device, weight._version)


def bfloat16_products_available() -> bool:
    """Whether oneDNN multiplies bfloat16 natively here (else it is slower than float32)."""
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and torch.cpu._is_avx512_bf16_supported()
    )


class TopKHead:
    """weight [V, D] float32 on the CPU. `candidates(x, k)` gives the float32 logits of a
    set of rows that holds every item's top k of x @ weight.T, and those rows' indices."""

    def __init__(self, weight: Tensor):
        w = weight.detach()
        if w.dim() != 2 or w.dtype != torch.float32 or w.device.type != "cpu":
            raise ValueError(f"TopKHead needs a float32 CPU weight [V, D], got {w.dtype} {list(w.shape)}")
        self.weight = w
        rounded = w.to(torch.bfloat16)
        # oneDNN's packed layout where it multiplies bfloat16 natively; F.linear elsewhere
        # (the same bound holds, it is just slower).
        self._packed = (
            torch.ops.mkldnn._reorder_linear_weight(rounded, 1) if bfloat16_products_available() else None
        )
        self._rounded = rounded if self._packed is None else None
        d = w.shape[1]
        self.rounded_norm = rounded.float().norm(dim=1)  # [V] |bf16(W_i)|
        # [V] |dW_i| + D * 2^-22 |W_i|: what multiplies |x| in the bound
        self.weight_slack = (w - rounded.float()).norm(dim=1) + d * 2.0**-22 * w.norm(dim=1)

    @classmethod
    def build(cls, weight: Tensor) -> TopKHead | None:
        """A TopKHead for `weight` where one pays (see the module docstring), else None."""
        usable = (
            weight.dim() == 2
            and weight.dtype == torch.float32
            and weight.device.type == "cpu"
            and weight.shape[0] >= MIN_VOCAB
            and cls.pays_here()
        )
        return cls(weight) if usable else None

    @staticmethod
    def pays_here() -> bool:
        """Whether reading the bfloat16 copy beats reading the float32 weight on this CPU:
        only with native bfloat16 products (F.linear on bfloat16 is slower than float32)."""
        return bfloat16_products_available()

    def candidates(self, x: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """x [B, D] float32, 1 <= k <= V -> (logits [B, N] float32, rows [N] int64), N >= k:
        logits[:, j] = x @ weight[rows[j]], and each item's top k rows are among `rows`."""
        V, D = self.weight.shape
        if x.dim() != 2 or x.shape[1] != D or x.dtype != torch.float32 or not 1 <= k <= V:
            raise ValueError(
                f"expected float32 x [B, {D}] and 1 <= k <= {V}, got {x.dtype} {list(x.shape)}, k={k}"
            )
        xb = x.to(torch.bfloat16)
        if self._rounded is not None:
            approx = F.linear(xb, self._rounded).float()  # [B, V]
        else:
            approx = torch.ops.mkldnn._linear_pointwise(xb, self._packed, None, "none", [], "").float()
        x_norm = x.norm(dim=1, keepdim=True)  # [B, 1]
        dx_norm = (x - xb.float()).norm(dim=1, keepdim=True)
        bound = torch.add(
            x_norm * self.weight_slack + dx_norm * self.rounded_norm, approx.abs(), alpha=_BF16_OUT
        )
        upper = approx + bound  # [B, V]
        # Usually the MIN_ROWS rows of largest upper bound hold every candidate: then the
        # k-th largest lower bound is found among them, and above all the other upper bounds.
        n = max(MIN_ROWS, k + 1)
        if n * 4 < V:
            top_upper, rows = upper.topk(n, dim=1)  # [B, n]
            lower = approx.gather(1, rows) - bound.gather(1, rows)
            threshold = lower.topk(k, dim=1).values[:, -1]  # [B]
            if bool((threshold > top_upper[:, -1]).all()):
                return self._exact(x, rows)
        # Otherwise: the k-th largest lower bound over all rows, and every row above it.
        threshold = (approx - bound).topk(k, dim=1).values[:, -1:]  # [B, 1]
        n = max(MIN_ROWS, int((upper >= threshold).sum(dim=1).max()))
        if n * 4 >= V:  # no saving left: the whole product
            return F.linear(x, self.weight), torch.arange(V)
        return self._exact(x, upper.topk(n, dim=1).indices)  # every row with upper >= threshold

    def _exact(self, x: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
        """The float32 logits [B, N] of the union of each item's `rows` [B, n], and that union."""
        rows = rows.view(-1) if x.shape[0] == 1 else rows.unique()
        return F.linear(x, self.weight.index_select(0, rows)), rows
