"""Semantic distillation: the first (semantic) quantizer's output, projected by a learnt 1x1
conv, is pulled towards a teacher's features by a cosine loss (Mimi distils WavLM).

The teacher is pluggable: `"package.module:factory"` names a callable that, called with
the config's keyword arguments, returns the teacher: a callable pcm [B, 1, T] at the
codec's sample rate -> features [B, D_teacher, frames] (any frame rate: they are resampled
in time to the codec's). It is frozen and never saved. `log_mel_teacher` is a weightless
teacher for tests and trials.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .losses import LogMel, cosine_distance

Teacher = Callable[[Tensor], Tensor]


def load_teacher(spec: str, kwargs: dict[str, Any] | None = None) -> Teacher:
    """The teacher named by "package.module:factory", built with `kwargs`."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"a teacher is named 'package.module:factory', got {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load the teacher {spec!r}: {e}") from e
    return factory(**(kwargs or {}))


class SemanticDistiller(nn.Module):
    """loss(semantic [B, D_latent, F], pcm [B, 1, T]) -> the cosine distance []."""

    teacher: Teacher

    def __init__(
        self, teacher: Teacher, latent_dim: int, sample_rate: int, device: torch.device | str = "cpu"
    ):
        super().__init__()
        if isinstance(teacher, nn.Module):
            teacher = teacher.to(device).requires_grad_(False).eval()
        # Not a submodule: the teacher is frozen, never optimized nor saved.
        object.__setattr__(self, "teacher", teacher)
        with torch.no_grad():
            probe = teacher(torch.zeros(1, 1, sample_rate, device=device))
        if probe.dim() != 3:
            raise ValueError(f"a teacher returns features [B, D, frames], got shape {list(probe.shape)}")
        self.projection = nn.Conv1d(latent_dim, probe.shape[1], 1, bias=False, device=device)

    def forward(self, semantic: Tensor, pcm: Tensor) -> Tensor:
        with torch.no_grad():
            target = self.teacher(pcm)
        return cosine_distance(self.projection(semantic), target)


def log_mel_teacher(sample_rate: int = 24_000, n_fft: int = 1024, n_mels: int = 32) -> Teacher:
    """A weightless teacher: log-mel frames [B, n_mels, frames] (hop n_fft / 4)."""
    return LogMel(sample_rate, n_fft, n_mels)
