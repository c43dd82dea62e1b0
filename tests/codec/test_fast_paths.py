"""The tiny model's convs are all below the matmul rule's size: force the fast conv paths
on them and check that the reference fixtures still hold, offline and streaming."""

import pytest
import torch

from moshi.kernels import conv as fast
from tests.codec import test_parity as parity


@pytest.fixture(autouse=True)
def _matmul_everywhere(monkeypatch):
    monkeypatch.setattr(fast, "MATMUL_MIN_WEIGHTS", 0)


def test_fast_paths_are_taken(tiny_mimi):
    assert fast.prefers_matmul(tiny_mimi.encoder.model[0].conv, torch.zeros(1, 1, 1))
    assert fast.prefers_matmul(tiny_mimi.decoder.model[2].convtr, torch.zeros(1, 1, 1))


def test_offline_parity(tiny_mimi, tiny_io):
    parity.test_offline_encode_decode(tiny_mimi, tiny_io)
    parity.test_offline_all_32_codebooks(tiny_mimi, tiny_io)


def test_streaming_parity(tiny_mimi, tiny_io):
    parity.test_streaming_one_frame_per_call(tiny_mimi, tiny_io)
