"""The LM features of the released `kyutai/tts-1.6b-en_fr`: a second text stream muxed into the
text tokens, depformer weight sets shared between codebooks, low-rank depformer embeddings.
Against Kyutai's reference (tests/fixtures/tts_16b_lm_tiny, tts_16b_checkpoint_keys.json)."""

import json
import warnings
from dataclasses import replace

import pytest
import torch

from moshi.lm import KyutaiConfig, LMModel, load_lm
from moshi.lm.depformer import FrameCache
from moshi.lm.layers import ZERO_TOKEN, Embedding
from moshi.lm.loading import FLOAT32_PREFIXES, keep_codebooks
from moshi.tts import TTS
from moshi.tts.options import TTSConfig
from tests.support.fixtures import FIXTURES, config_of, fixture_io, rel_err

TINY = FIXTURES / "tts_16b_lm_tiny"
MANIFEST = json.loads((FIXTURES / "tts_16b_checkpoint_keys.json").read_text())


def _config():
    return config_of(TINY)


@pytest.fixture(scope="module")
def lm():
    return load_lm(TINY / "weights.safetensors", TINY / "config.json")


def test_configs_parse_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny = KyutaiConfig.parse(_config()).lm
        released = KyutaiConfig.parse(MANIFEST["config"])
        tts = TTSConfig.parse(released)
    assert tiny.depformer_weights_per_step_schedule == (0, 1, 2, 2, 3, 3, 3, 3)
    assert (tiny.depformer_weight_sets, tiny.depformer_low_rank_embeddings) == (4, 8)
    assert tiny.demux_second_text_stream and tiny.text_mux_card == 101
    big = released.lm
    assert (big.n_q, big.dep_q, big.depformer_weight_sets) == (32, 32, 11)
    assert big.depformer_low_rank_embeddings == 128 and big.demux_second_text_stream
    assert [big.depformer_weight_set(k) for k in (0, 7, 8, 15, 16, 31)] == [0, 7, 8, 8, 9, 10]
    assert (tts.delay_steps, tts.second_stream_ahead) == (16, 2)
    assert tts.voice_suffix == ".1e68beda@240.safetensors"


def test_either_name_of_the_second_stream():
    """The reference reads `demux_second_stream` when present, else `demux_second_text_stream`."""
    raw = {k: v for k, v in _config().items() if k != "demux_second_stream"}
    assert not KyutaiConfig.parse(raw).lm.demux_second_text_stream
    assert KyutaiConfig.parse(raw | {"demux_second_text_stream": True}).lm.demux_second_text_stream
    both = raw | {"demux_second_text_stream": True, "demux_second_stream": False}
    assert not KyutaiConfig.parse(both).lm.demux_second_text_stream


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("depformer_weights_per_step_schedule", [0, 1], "a weight set >= 0 for each of the dep_q=8"),
        ("depformer_weights_per_step_schedule", [0, -1, 1, 1, 1, 1, 1, 1], "weight set >= 0"),
        ("depformer_weights_per_step_schedule", "0,1", "must be a list of integers"),
        ("depformer_low_rank_embeddings", 0, "must be >= 1"),
        ("depformer_low_rank_embeddings", 2.5, "must be an integer"),
        ("demux_second_stream", "yes", "must be true or false"),
        ("depformer_dim_feedforward", [132] * 4, "as a list"),
    ],
)
def test_unsupported_values_are_errors(key, value, match):
    with pytest.raises(ValueError, match=match):
        KyutaiConfig.parse(_config() | {key: value})


def test_low_rank_and_demuxed_embeddings():
    torch.manual_seed(0)
    n, dim, r = 5, 6, 3
    low = Embedding(n, dim, low_rank=r)
    both = Embedding(n, dim, low_rank=r, demux=True)
    for e in (low, both):
        torch.nn.init.normal_(e.weight)
    assert low.weight.shape == (n, r) and low.low_rank is not None
    tokens = torch.tensor([0, 4, ZERO_TOKEN, -2])
    with torch.no_grad():
        want = [low.low_rank(low.weight[0]), low.low_rank(low.weight[4]), torch.zeros(dim)]
        assert torch.allclose(low(tokens), torch.stack([*want, want[0]]), atol=1e-6)  # -2: row 0
        # token a + n * (b + 1): out1(row a) + out2(row b); b = -1 (token < n): row a alone
        assert both.out1 is not None and both.out2 is not None
        w, o1, o2 = both.weight, both.out1, both.out2
        got = both(torch.tensor([3, 3 + n * (0 + 1), 1 + n * (4 + 1), ZERO_TOKEN]))
        want = [o1(w[3]), o1(w[3]) + o2(w[0]), o1(w[1]) + o2(w[4]), torch.zeros(dim)]
        assert torch.allclose(got, torch.stack(want), atol=1e-6)


def test_training_forward_with_muxed_text(lm):
    io = fixture_io("tts_16b_lm_tiny")
    tts = TTS(lm, FIXTURES / "tiny_spm_100.model", delay_steps=4)
    values = tts.conditions([TINY / "voice.safetensors"], cfg=2.0)
    with torch.no_grad():
        out = lm(io["codes"], lm.prepare_conditions([values, values]))
    assert torch.equal(out.mask, io["mask"])
    assert (io["codes"][:, 0] > 101).any() and (io["codes"][:, 0] == ZERO_TOKEN).any()
    valid = out.mask[..., None].expand_as(out.logits)
    assert rel_err(out.logits[valid], io["logits"][valid]) < 1e-4
    assert rel_err(out.text_logits, io["text_logits"]) < 1e-4


def test_shared_weight_sets(lm):
    """Input projections, attention and FFNs per weight set; embeddings and output linears
    per codebook."""
    assert len(lm.depformer_in) == 4 and len(lm.linears) == 8 and len(lm.depformer_emb) == 7
    layer = lm.depformer.layers[0]
    assert len(layer.gating) == 4 and layer.self_attn.in_proj_weight.shape == (4 * 3 * 32, 32)
    assert layer.self_attn.out_proj.weight.shape == (4 * 32, 32)


def test_released_model_on_meta_matches_the_reference_manifest():
    """The model built from the released config has the reference model's keys and shapes
    (the released file's 418 tensors); the conditioners stay float32, the rest is cast."""
    config = KyutaiConfig.parse(MANIFEST["config"]).lm
    with torch.device("meta"):
        model = LMModel(config)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == MANIFEST["tensors"] and len(ours) == 418
    float32 = {k for k, dtype in MANIFEST["dtypes"].items() if dtype == "float32"}
    assert float32 == {k for k in ours if k.startswith(FLOAT32_PREFIXES)} and len(float32) == 8
    params = sum(v.numel() for v in model.state_dict().values())
    assert 1.8e9 < params < 1.9e9


def test_fewer_codebooks_keep_the_weight_sets_they_use():
    """Dropping codebooks drops the weight sets only they use and renumbers the others
    (here codebooks 0 and 1 use sets 1 and 3 of 4): the kept codebooks' logits are unchanged."""
    torch.manual_seed(0)
    cfg = replace(
        KyutaiConfig.parse(_config()).lm, depformer_weights_per_step_schedule=(1, 3, 0, 0, 2, 2, 2, 2)
    )
    big = LMModel(cfg)
    for p in big.parameters():
        torch.nn.init.normal_(p, std=0.3)
    state, small_cfg = keep_codebooks(big.state_dict(), cfg, 2)
    assert small_cfg.depformer_weights_per_step_schedule == (0, 1) and small_cfg.n_q == 2
    small = LMModel(small_cfg)
    small.load_state_dict(state)
    h, text = torch.randn(3, cfg.dim), torch.tensor([1, 5 + 101 * 3, 7])

    def two_codebooks(model):
        cache = FrameCache.empty(model.config, 3, h)
        first = model.depformer_step(0, h, text, cache)
        return first, model.depformer_step(1, h, first.argmax(-1), cache)

    with torch.no_grad():
        for a, b in zip(two_codebooks(big), two_codebooks(small), strict=True):
            assert torch.allclose(a, b, atol=1e-5)
