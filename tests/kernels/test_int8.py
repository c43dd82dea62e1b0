"""The opt-in int8 weights (moshi.quantize, moshi.kernels.int8) stay within their stated tolerances of the
exact float32 path. Tolerances are max-abs errors relative to the exact output's max-abs."""

import pytest
import torch
import torch.nn.functional as F

from moshi import quantize
from moshi.codec import Mimi, MimiConfig, load_mimi
from moshi.kernels import conv as fast
from moshi.kernels import int8
from moshi.lm import load_lm
from moshi.lm.lora import LoRAOptions, apply_lora
from tests.support.fixtures import FIXTURES, fixture_io, rel_err

TINY = FIXTURES / "mimi_tiny"
FRAME = 1920
LINEAR_TOL = 0.02  # one product: int8 weights and bfloat16 activations
DECODE_TOL = 0.03  # a whole decode of the tiny model, every conv in int8
CODES_AGREE = 0.8  # fraction of codes equal to the exact path's


@pytest.mark.parametrize("rows", [1, 2, 16, 17, 300])  # the int8 kernel, then dequantized float32
@pytest.mark.parametrize("n,k", [(64, 32), (1536, 512), (512, 2048)])
def test_int8_linear_is_close(rows, n, k):
    w, x = torch.randn(n, k) / k**0.5, torch.randn(3, rows, k)
    exact = F.linear(x, w)
    assert rel_err(int8.Int8Linear(w)(x), exact) < LINEAR_TOL


def test_apply_quantizes_the_transformers_and_the_big_convs():
    with torch.device("meta"):
        mimi = quantize.apply(Mimi(MimiConfig()))
    layer = mimi.encoder_transformer.layers[0]
    for module in (layer.self_attn.in_proj, layer.self_attn.out_proj, layer.linear1, layer.linear2):
        assert isinstance(module, int8.Int8Linear)
    assert isinstance(mimi.encoder.model[12].conv, int8.Int8Conv1d)  # 1024 x 512 x 16
    assert isinstance(mimi.decoder.model[2].convtr, int8.Int8ConvTranspose1d)  # transposed, 1024 x 512 x 16
    assert type(mimi.encoder.model[3].conv) is fast.Conv1d  # 128 x 64 x 8: small, stays float32
    assert type(mimi.upsample.convtr) is fast.ConvTranspose1d  # depthwise


@pytest.fixture
def mimis(monkeypatch):
    """The tiny model exactly, and in int8 with every conv on the matmul path."""
    monkeypatch.setattr(fast, "MATMUL_MIN_WEIGHTS", 0)
    load = lambda: load_mimi(TINY / "weights.safetensors", TINY / "config.json")  # noqa: E731
    return load(), quantize.apply(load())


def _stream_codes(mimi, pcm):
    with mimi.streaming(pcm.shape[0]):
        return torch.cat([mimi.encode(f) for f in pcm.split(FRAME, dim=-1)], -1)


def _stream_decode(mimi, codes):
    with mimi.streaming(codes.shape[0]):
        return torch.cat([mimi.decode(c) for c in codes.split(1, dim=-1)], -1)


def test_int8_mimi_is_close_offline(mimis):
    exact, approx = mimis
    io = fixture_io("mimi_tiny")
    pcm, codes = io["pcm"], io["codes"]
    assert (approx.encode(pcm) == exact.encode(pcm)).float().mean() >= CODES_AGREE
    assert rel_err(approx.decode(codes), exact.decode(codes)) < DECODE_TOL


def test_int8_mimi_is_close_streaming(mimis):
    exact, approx = mimis
    io = fixture_io("mimi_tiny")
    pcm, codes = io["pcm"], io["codes"]
    assert (_stream_codes(approx, pcm) == _stream_codes(exact, pcm)).float().mean() >= CODES_AGREE
    assert rel_err(_stream_decode(approx, codes), _stream_decode(exact, codes)) < DECODE_TOL


LM_LOGITS_TOL = 0.02  # the LM's logits, every linear layer in int8 (tiny model: ~0.9%)
LM_ARGMAX_AGREE = 0.9  # teacher-forced greedy tokens equal to the exact path's


def test_int8_lm_is_close():
    d = FIXTURES / "moshi_lm_tiny"
    io = fixture_io("moshi_lm_tiny")
    exact = load_lm(d / "weights.safetensors", d / "config.json")
    approx = quantize.apply_lm(load_lm(d / "weights.safetensors", d / "config.json"))
    assert isinstance(approx.text_linear, int8.Int8Linear)
    assert isinstance(approx.depformer.layers[0].self_attn.out_projs[0], int8.Int8Linear)
    with pytest.raises(ValueError, match="already transformed"):
        apply_lora(approx, LoRAOptions(rank=2))
    with torch.no_grad():
        a, b = exact(io["codes"]), approx(io["codes"])
    assert rel_err(b.text_logits, a.text_logits) < LM_LOGITS_TOL
    assert rel_err(b.logits, a.logits) < LM_LOGITS_TOL
    same = (b.logits.argmax(-1) == a.logits.argmax(-1))[a.mask]
    assert same.float().mean() >= LM_ARGMAX_AGREE


@pytest.mark.parametrize("width", [8, 24, 88, 96])
def test_int8_linear_any_width(width):
    """Widths the int8 kernel mishandles take the dequantized path."""
    w, x = torch.randn(32, width) / width**0.5, torch.randn(2, width)
    assert rel_err(int8.Int8Linear(w)(x), F.linear(x, w)) < LINEAR_TOL
