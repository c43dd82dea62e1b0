"""The LM against Kyutai's reference outputs (tests/fixtures/moshi_lm_tiny, stt_lm_tiny)."""

import json

import torch

from moshi.lm import LMConfig, LMModel
from moshi.lm.generator import Generator
from tests.support.fixtures import FIXTURES, rel_err


def test_training_forward(moshi_lm, moshi_io):
    with torch.no_grad():
        out = moshi_lm(moshi_io["codes"])
    assert torch.equal(out.mask, moshi_io["mask"])
    assert torch.equal(out.text_mask, moshi_io["text_mask"])
    assert out.logits.shape == (2, 8, 40, 64) and out.text_logits.shape == (2, 1, 40, 100)
    valid = out.mask[..., None].expand_as(out.logits)
    assert rel_err(out.logits[valid], moshi_io["logits"][valid]) < 1e-4
    assert rel_err(out.text_logits, moshi_io["text_logits"]) < 1e-4


def _run(gen, codes, batch, with_heads=False):
    tokens, heads = [], []
    with gen.streaming(batch):
        for t in range(codes.shape[-1]):
            if with_heads:
                out, h = gen.step_with_extra_heads(codes[..., t : t + 1])
                heads.append(torch.stack([x[:, 0] for x in h]))
            else:
                out = gen.step(codes[..., t : t + 1])
            width = 1 + gen.model.config.dep_q
            tokens.append(torch.full((batch, width, 1), -1) if out is None else out)
    return torch.cat(tokens, -1), (torch.stack(heads, 2) if heads else None)


def test_greedy_streaming_generation(moshi_lm, moshi_io):
    """40 steps with a context of 24: the KV ring wraps."""
    assert moshi_lm.config.context < 40
    tokens, _ = _run(Generator(moshi_lm, temp=0, temp_text=0), moshi_io["user_codes"], 2)
    assert torch.equal(tokens, moshi_io["greedy_out"])


def test_speech_to_text_greedy_and_extra_heads(stt_lm, stt_io):
    text, heads = _run(Generator(stt_lm, temp=0, temp_text=0), stt_io["audio_codes"], 2, with_heads=True)
    assert torch.equal(text, stt_io["greedy_text"])
    assert heads.shape == stt_io["extra_heads"].shape
    assert rel_err(heads, stt_io["extra_heads"]) < 1e-5


def test_7b_on_meta_matches_the_released_manifest():
    manifest = json.loads((FIXTURES / "moshi_7b_checkpoint_keys.json").read_text())
    with torch.device("meta"):
        model = LMModel(LMConfig())
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == manifest["tensors"]
    params = sum(v.numel() for v in model.state_dict().values())
    assert 7.6e9 < params < 7.8e9
