"""Mimi against Kyutai's reference outputs (tests/fixtures/mimi_tiny), with the default conv
paths and with the fast (matmul) conv path forced on every conv (the tiny model's convs are
all below the size at which it is taken by itself)."""

import pytest
import torch

from moshi.kernels import conv as fast
from tests.support.fixtures import rel_err

FRAME = 1920
TOL = 1e-4


@pytest.fixture(params=["default convs", "matmul convs"])
def conv_paths(request, monkeypatch):
    if request.param == "matmul convs":
        monkeypatch.setattr(fast, "MATMUL_MIN_WEIGHTS", 0)


@pytest.mark.usefixtures("conv_paths")
def test_offline_encode_decode(tiny_mimi, tiny_io):
    codes = tiny_mimi.encode(tiny_io["pcm"])
    assert codes.dtype == torch.int64
    assert torch.equal(codes, tiny_io["codes"])
    assert rel_err(tiny_mimi.decode(tiny_io["codes"]), tiny_io["decoded"]) < TOL
    assert rel_err(tiny_mimi.decode_latent(tiny_io["codes"]), tiny_io["latent"]) < TOL


@pytest.mark.usefixtures("conv_paths")
def test_offline_all_32_codebooks(tiny_mimi, tiny_io):
    tiny_mimi.set_num_codebooks(32)
    codes = tiny_mimi.encode(tiny_io["pcm"])
    assert torch.equal(codes, tiny_io["codes_all"])
    assert rel_err(tiny_mimi.decode(tiny_io["codes_all"]), tiny_io["decoded_all"]) < TOL


@pytest.mark.usefixtures("conv_paths")
def test_streaming_one_frame_per_call(tiny_mimi, tiny_io):
    pcm, codes = tiny_io["pcm"], tiny_io["codes"]
    n = codes.shape[-1]
    with tiny_mimi.streaming(2):
        stream_codes = torch.cat(
            [tiny_mimi.encode(pcm[..., i * FRAME : (i + 1) * FRAME]) for i in range(n)], dim=-1
        )
    assert torch.equal(stream_codes, tiny_io["stream_codes"])
    with tiny_mimi.streaming(2):
        decoded = torch.cat([tiny_mimi.decode(codes[..., i : i + 1]) for i in range(n)], dim=-1)
    assert rel_err(decoded, tiny_io["stream_decoded"]) < TOL


def test_offline_pads_to_whole_frames(tiny_mimi, tiny_io):
    pcm = tiny_io["pcm"][..., : 3 * FRAME + 100]
    codes = tiny_mimi.encode(pcm)
    assert codes.shape == (2, 8, 4)
    padded = torch.nn.functional.pad(pcm, (0, FRAME - 100))
    assert torch.equal(codes, tiny_mimi.encode(padded))
    assert tiny_mimi.decode(codes).shape == (2, 1, 4 * FRAME)
