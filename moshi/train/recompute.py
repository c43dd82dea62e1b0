"""Gradient checkpointing as a transform: the given layers keep no activations for the
backward pass and recompute them (torch.utils.checkpoint, non-reentrant). Less memory,
about a third more compute; the numbers are the same."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn
from torch.utils.checkpoint import checkpoint


def recompute_layers(layers: Iterable[nn.Module]) -> None:
    """Make each layer's forward recompute its activations in the backward pass (in place)."""
    for layer in layers:
        forward = layer.forward

        def recomputed(*args: Any, _forward: Any = forward, **kwargs: Any) -> Any:
            return checkpoint(_forward, *args, use_reentrant=False, **kwargs)

        layer.forward = recomputed  # type: ignore[method-assign]
