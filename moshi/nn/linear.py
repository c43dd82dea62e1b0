"""Linear layers on the hot path, without nn.Module's call machinery.

A streaming step at batch 1 makes over a hundred small products, where calling a module
(hooks, attribute lookups) is a visible cost. A `Linear` is what such a product needs: a
plain weight [out, in] for F.linear, or, where a transform swapped a module in (e.g.
moshi.kernels.int8), that module.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

Linear = Tensor | nn.Module


def linear_of(layer: nn.Module) -> Linear:
    """A bias-free nn.Linear's weight; any other module as it is."""
    if type(layer) is nn.Linear and layer.bias is None:
        return layer.weight
    return layer


def apply_linear(w: Linear, x: Tensor) -> Tensor:
    return F.linear(x, w) if isinstance(w, Tensor) else w(x)


def linear(layer: nn.Module, x: Tensor) -> Tensor:
    """`layer(x)`, through F.linear for a plain bias-free nn.Linear."""
    return apply_linear(linear_of(layer), x)
