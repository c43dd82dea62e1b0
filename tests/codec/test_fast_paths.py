"""The tiny model's convs are all below the matmul rule's size: forcing the fast conv paths
takes them (test_parity.py checks the reference fixtures hold on them)."""

import pytest
import torch

from moshi.kernels import conv as fast


@pytest.fixture(autouse=True)
def _matmul_everywhere(monkeypatch):
    monkeypatch.setattr(fast, "MATMUL_MIN_WEIGHTS", 0)


def test_fast_paths_are_taken(tiny_mimi):
    assert fast.prefers_matmul(tiny_mimi.encoder.model[0].conv, torch.zeros(1, 1, 1))
    assert fast.prefers_matmul(tiny_mimi.decoder.model[2].convtr, torch.zeros(1, 1, 1))
