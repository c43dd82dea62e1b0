"""The exact product x @ W.T for a few rows on a CPU: the fastest of a few formulations,
timed once per weight layout, dtype, row count and thread count, then remembered.

A streaming step multiplies a handful of rows (the LM: one per batch item; Mimi's
transformers: 2 per 80 ms frame) by big weights, so its time is the time to stream the
weights from memory. How fast a BLAS streams them depends on how the product is written
and on the machine: with torch 2.13's MKL on a 2-core AMD EPYC (AVX-512), `(W @ x.T).T`
streams float32 weights at 2 rows 2-3x faster than `F.linear(x, W)`, which is itself the
fastest in bfloat16, and at 4 rows the winner depends on the shape. So each is timed.

Every formulation computes the same dot products in the same dtype (bfloat16 products
accumulate in float32 in each), only the order of the sums differs: the results are those
of F.linear within float rounding (tests/nn/test_small_rows.py). None keeps a second copy
of a weight. Choosing applies under no_grad / inference_mode only (streaming); with
autograd on, products are F.linear as before, so training is untouched.

MOSHI_LINEAR=linear in the environment (or `force("linear")`) keeps every product on
F.linear; another form name forces that form (tests, benchmarks).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

Form = Callable[[Tensor, Tensor], Tensor]  # (x [M, K], W [N, K]) -> [M, N]

FORMS: dict[str, Form] = {
    "linear": lambda x, w: F.linear(x, w),
    "weight_left": lambda x, w: torch.mm(w, x.T).T.contiguous(),  # the weight as the left operand
    "per_row": lambda x, w: torch.stack([torch.mv(w, row) for row in x.unbind(0)]),  # M products
}
PLAIN = "linear"
MAX_ROWS = 8  # more rows than this: F.linear (the BLAS' own blocking does well there)
# One row: F.linear. The three forms streamed float32 and bfloat16 weights within 3% of
# each other there (bench/linear.py), and timing them would only add noise.
TRIALS = 3  # timed rounds, forms interleaved; the best call of each counts (neighbours' noise)
# A streaming step reads each weight once, after the others: from memory, not the cache. So
# forms are timed on copies of a weight cycled past the last-level cache (32 MiB on the
# machine above; cache-resident timings there ranked the forms the other way round).
EVICT_BYTES = 64 * 2**20
MAX_COPIES = 64  # tiny weights: per-call overhead is what counts anyway
MARGIN = 0.9  # another form must take under this fraction of F.linear's time to be chosen
ENV = "MOSHI_LINEAR"

_chosen: dict[tuple, Form] = {}
_forced: list[str | None] = [None]


def force(form: str | None) -> None:
    """Use `form` for every small product from now on (None: choose by timing again)."""
    if form is not None and form not in FORMS:
        raise ValueError(f"{ENV} must be one of {sorted(FORMS)}, got {form!r}")
    _forced[0] = form
    _chosen.clear()


def applies(x: Tensor) -> bool:
    """Whether `product` is the path for this input: a CPU, autograd off, 2 to MAX_ROWS rows
    (a single row is a matrix-vector product whichever way it is written: F.linear)."""
    return (
        x.shape[-1] < x.numel() <= MAX_ROWS * x.shape[-1]
        and x.device.type == "cpu"
        and not torch.is_grad_enabled()
        and _forced[0] != PLAIN
    )


def product(x: Tensor, w: Tensor) -> Tensor:
    """x [M, K] @ w.T -> [M, N] (w [N, K]), by the form chosen for this weight and M."""
    key = (w.shape, w.stride(), w.dtype, x.shape[0], torch.get_num_threads())
    form = _chosen.get(key)
    if form is None:
        form = _chosen[key] = FORMS[_forced[0] or choose(x, w)]
    return form(x, w)


def choose(x: Tensor, w: Tensor) -> str:
    """The fastest form for x [M, K] @ w.T on this machine, F.linear unless clearly beaten."""
    return pick(time_forms(x, w))


def pick(best: dict[str, float]) -> str:
    """The form of least time in `best` (seconds per form), F.linear unless clearly beaten."""
    fastest = min(best, key=best.__getitem__)
    return fastest if best[fastest] < MARGIN * best[PLAIN] else PLAIN


def time_forms(x: Tensor, w: Tensor, trials: int = TRIALS) -> dict[str, float]:
    """Best seconds per call of each form with w read from memory: w itself when it is
    bigger than EVICT_BYTES, else up to MAX_COPIES copies of it in turn (freed after).
    Forms interleaved, after one untimed round."""
    size = w.numel() * w.element_size()
    copies = min(MAX_COPIES, -(-EVICT_BYTES // max(size, 1)))
    weights = [w] if copies == 1 else [w.clone() for _ in range(copies)]
    best = dict.fromkeys(FORMS, float("inf"))
    for trial in range(trials + 1):
        for name, form in FORMS.items():
            for weight in weights:
                start = time.perf_counter()
                form(x, weight)
                if trial:
                    best[name] = min(best[name], time.perf_counter() - start)
    return best


force(os.environ.get(ENV) or None)
