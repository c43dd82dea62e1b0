"""The same code on a CUDA GPU (skipped on machines without one): parity, and CUDA graphs
of the LM step against eager."""

import pytest
import torch

from moshi.codec import load_mimi
from moshi.lm import load_lm
from moshi.lm.generator import Generator
from tests.support.fixtures import FIXTURES, fixture_io, rel_err

pytestmark = pytest.mark.requires_cuda


def _generate(gen, codes):
    outs = []
    with gen.streaming(codes.shape[0]):
        for t in range(codes.shape[-1]):
            out = gen.step(codes[..., t : t + 1])
            outs.append(torch.full((codes.shape[0], 9, 1), -1) if out is None else out.cpu())
    return torch.cat(outs, -1)


@pytest.mark.parametrize("graphs", [False, True])
def test_lm_greedy_parity_on_cuda(graphs):
    d = FIXTURES / "moshi_lm_tiny"
    io = fixture_io("moshi_lm_tiny")
    model = load_lm(d / "weights.safetensors", d / "config.json", device="cuda")
    gen = Generator(model, temp=0, temp_text=0, cuda_graphs=graphs)
    assert gen.cuda_graphs == graphs
    assert torch.equal(_generate(gen, io["user_codes"].cuda()), io["greedy_out"])


def test_cuda_graphs_equal_eager_when_sampling_with_pauses_and_resets():
    d = FIXTURES / "moshi_lm_tiny"
    io = fixture_io("moshi_lm_tiny")
    model = load_lm(d / "weights.safetensors", d / "config.json", device="cuda")
    runs = []
    for graphs in (False, True):
        gen = Generator(model, temp=0.8, temp_text=0.7, seed=5, cuda_graphs=graphs)
        codes = io["user_codes"].cuda()
        outs = []
        with gen.streaming(2):
            for t in range(30):
                if t == 10:
                    gen.set_exec_mask(torch.tensor([True, False], device="cuda"))
                if t == 12:
                    gen.set_exec_mask(None)
                if t == 20:
                    gen.reset_streaming(torch.tensor([True, False], device="cuda"))
                out = gen.step(codes[..., t : t + 1])
                outs.append(torch.full((2, 9, 1), -1) if out is None else out.cpu())
        runs.append(torch.cat(outs, -1))
    assert torch.equal(runs[0], runs[1])


def test_codec_parity_on_cuda():
    d = FIXTURES / "mimi_tiny"
    io = fixture_io("mimi_tiny")
    mimi = load_mimi(d / "weights.safetensors", d / "config.json", device="cuda")
    assert torch.equal(mimi.encode(io["pcm"].cuda()).cpu(), io["codes"])
    assert rel_err(mimi.decode(io["codes"].cuda()).cpu(), io["decoded"]) < 1e-4
    with mimi.streaming(2):
        frames = [mimi.decode(io["codes"][..., i : i + 1].cuda()).cpu() for i in range(30)]
    assert rel_err(torch.cat(frames, -1), io["stream_decoded"]) < 1e-4
