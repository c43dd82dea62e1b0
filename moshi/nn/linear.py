"""Calling a linear layer without nn.Module's call machinery."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def linear(layer: nn.Module, x: Tensor) -> Tensor:
    """`layer(x)`. A plain nn.Linear goes straight to F.linear: a streaming step at batch 1
    makes over a hundred small products, where the module call is a visible cost. Other
    modules (transforms may swap a Linear for one, e.g. moshi.kernels.int8) are called."""
    if type(layer) is nn.Linear:
        return F.linear(x, layer.weight, layer.bias)
    return layer(x)
