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
# Timings per form, interleaved, the best of each counting (against neighbours' noise): at
# least TRIALS, more while under BUDGET_S seconds in all (small weights), at most MAX_TRIALS.
TRIALS, MAX_TRIALS, BUDGET_S = 5, 50, 0.05
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
    """Whether `product` is the path for this input: a CPU, autograd off, at most MAX_ROWS rows."""
    return (
        x.device.type == "cpu"
        and not torch.is_grad_enabled()
        and 0 < x.numel() <= MAX_ROWS * x.shape[-1]
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
    best = time_forms(x, w, TRIALS, BUDGET_S)
    fastest = min(best, key=best.__getitem__)
    return fastest if best[fastest] < MARGIN * best[PLAIN] else PLAIN


def time_forms(x: Tensor, w: Tensor, trials: int, budget_s: float = 0.0) -> dict[str, float]:
    """Best seconds per call of each form (after one untimed call each), interleaved: `trials`
    rounds, more while under `budget_s` in all (up to MAX_TRIALS)."""
    best = dict.fromkeys(FORMS, float("inf"))
    start = time.perf_counter()
    for trial in range(MAX_TRIALS + 1):
        if trial > trials and time.perf_counter() - start > budget_s:
            break
        for name, form in FORMS.items():
            t0 = time.perf_counter()
            form(x, w)
            if trial:
                best[name] = min(best[name], time.perf_counter() - t0)
    return best


force(os.environ.get(ENV) or None)
