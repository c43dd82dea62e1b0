"""Linear layers on the hot path, without nn.Module's call machinery.

A streaming step at batch 1 makes over a hundred small products, where calling a module
(hooks, attribute lookups) is a visible cost. A `Linear` is what such a product needs: a
plain weight [out, in] for F.linear, or, where a transform swapped another module in
(e.g. int8 weights, a LoRA adapter), that module.

A product of a few rows on a CPU with autograd off (streaming) goes through
`small_rows.product`: the same result within float rounding, by the fastest formulation
on this machine.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import small_rows

Linear = Tensor | nn.Module


def linear_weight(out_features: int, in_features: int) -> nn.Parameter:
    """A bare [out, in] projection weight (kept as Kyutai's checkpoints store it), started as
    nn.Linear starts its own: a model built without loading weights computes finite numbers."""
    weight = nn.Parameter(torch.empty(out_features, in_features))
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    return weight


class HostRows(nn.Module):
    """x [..., in] -> x @ W.T [..., rows], W = rows [start, start + rows) of a weight its
    host module owns (one projection of a stacked attention weight, `attr` a dotted name).

    The host calls it as an ordinary child, so that transforms may swap it for another
    module (moshi.quantize, LoRA). It holds no parameter: the host's state dict keeps
    Kyutai's names, and the rows follow the host's weight through `.to()` and loading.
    """

    _host: nn.Module

    def __init__(self, host: nn.Module, attr: str, start: int, rows: int):
        super().__init__()
        object.__setattr__(self, "_host", host)  # not a submodule: the host owns the weight
        self.attr, self.start, self.rows = attr, start, rows

    def base(self) -> Tensor:
        """W [rows, in]: a view of the host's weight (the weight itself when it is all of it)."""
        weight = functools.reduce(getattr, self.attr.split("."), self._host)
        assert isinstance(weight, Tensor)
        if self.start == 0 and self.rows == weight.shape[0]:
            return weight
        return weight.narrow(0, self.start, self.rows)

    def forward(self, x: Tensor) -> Tensor:
        return apply_linear(self.base(), x)


def linear_of(layer: nn.Module) -> Linear:
    """A bias-free nn.Linear's weight, a `HostRows`' rows; any other module as it is."""
    if type(layer) is nn.Linear and layer.bias is None:
        return layer.weight
    if type(layer) is HostRows:
        return layer.base()
    return layer


def apply_linear(w: Linear, x: Tensor) -> Tensor:
    """x [..., in] -> [..., out]: x @ w.T for a weight [out, in], else the module's w(x)."""
    if not isinstance(w, Tensor):
        return w(x)
    if small_rows.applies(x):
        return small_rows.product(x.reshape(-1, x.shape[-1]), w).view(*x.shape[:-1], -1)
    return F.linear(x, w)


def linear(layer: nn.Module, x: Tensor) -> Tensor:
    """`layer(x)`, through F.linear for a plain bias-free nn.Linear or a `HostRows`."""
    return apply_linear(linear_of(layer), x)
