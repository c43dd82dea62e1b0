"""Conditioning (TTS models): conditioners, fuser and cross-attention configs, loading,
streaming equals offline, and the generator's guidance and text-to-speech options."""

import warnings

import pytest
import torch

from moshi.lm import KyutaiConfig, load_lm
from moshi.lm.conditioners import ConditionerConfig, FuserConfig, TensorCondition
from moshi.lm.generator import Generator
from moshi.lm.guidance import Guidance
from moshi.lm.sampling import make_generator, sample
from moshi.nn import streaming as st
from tests.support.fixtures import FIXTURES, config_of, rel_err

TTS = FIXTURES / "tts_lm_tiny"
VOICE = TensorCondition(torch.randn(50, 32), torch.arange(50) < 10)


def _config():
    return config_of(TTS)


@pytest.fixture(scope="module")
def tts_lm():
    return load_lm(TTS / "weights.safetensors", TTS / "config.json")


def test_conditioning_config_is_typed():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lm = KyutaiConfig.parse(_config()).lm
    assert lm.cross_attention
    assert lm.conditioner("speaker_wavs") == ConditionerConfig("speaker_wavs", "tensor", 32)
    assert lm.conditioner("cfg").possible_values[2] == "2.0" and lm.conditioner("cfg").n_bins == 7
    assert lm.fuser == FuserConfig(("control", "cfg"), ("speaker_wavs",), True, 1.0)


def _with(path: str, value):
    cfg = _config()
    *keys, last = path.split(".")
    node = cfg
    for k in keys:
        node = node[k]
    node[last] = value
    return cfg


@pytest.mark.parametrize(
    "path, value, match",
    [
        ("conditioners.control.type", "text", r"conditioners\.control\.type='text' is not supported"),
        ("conditioners.control.lut.tokenizer", "spm", r"conditioners\.control\.lut\.tokenizer='spm'"),
        ("conditioners.control.lut.possible_values", ["a", "b", "c"], "1 to n_bins=2 possible_values"),
        ("fuser.sum", ["speaker_wavs"], "'speaker_wavs' is a tensor condition"),
        ("fuser.cross", ["voice"], "names 'voice', which is not in config.conditioners"),
        ("fuser.prepend", ["control"], r"fuser\.prepend is not supported"),
        ("cross_attention", False, "cross_attention must be true exactly when"),
        ("fuser", None, "needs a config.fuser"),
    ],
)
def test_unsupported_conditioning_is_an_error(path, value, match):
    with pytest.raises(ValueError, match=match):
        KyutaiConfig.parse(_with(path, value))


def test_unknown_conditioning_keys_are_named_in_a_warning():
    with pytest.warns(UserWarning, match="fuser: ignoring unknown keys \\['brand_new'\\]"):
        KyutaiConfig.parse(_with("fuser.brand_new", 1))


def test_conditioners_stay_float32_when_the_lm_is_cast():
    lm = load_lm(TTS / "weights.safetensors", TTS / "config.json", dtype=torch.bfloat16)
    dtypes = {n: p.dtype for n, p in lm.named_parameters()}
    assert {d for n, d in dtypes.items() if n.startswith("condition_provider.")} == {torch.float32}
    assert {d for n, d in dtypes.items() if not n.startswith("condition_provider.")} == {torch.bfloat16}
    gen = Generator(lm, temp=0, temp_text=0, audio_delay_steps=1)
    with gen.streaming(1, [{"speaker_wavs": VOICE, "cfg": "2.0"}]):
        for _ in range(4):
            out = gen.step(torch.zeros(1, 0, 1, dtype=torch.long))
    assert out.shape == (1, 9, 1)


def test_fewer_codebooks():
    lm = load_lm(TTS / "weights.safetensors", TTS / "config.json", n_q=3)
    assert (lm.config.n_q, lm.config.dep_q, lm.config.delays) == (3, 3, (0, 0, 2, 2))
    assert lm.depformer.layers[0].self_attn.in_proj_weight.shape == (3 * 3 * 32, 32)
    assert len(lm.emb) == len(lm.linears) == 3 and len(lm.depformer_emb) == 2
    with pytest.raises(ValueError, match="n_q must be in"):
        load_lm(TTS / "weights.safetensors", TTS / "config.json", n_q=9)
    with pytest.raises(ValueError, match="n_q == dep_q"):
        load_lm(
            FIXTURES / "moshi_lm_tiny" / "weights.safetensors",
            FIXTURES / "moshi_lm_tiny" / "config.json",
            n_q=4,
        )


def test_streaming_with_a_cached_source_equals_offline(tts_lm):
    torch.manual_seed(1)
    tokens = torch.randint(0, 64, (2, 9, 12))
    tokens[:, 0] = torch.randint(0, 100, (2, 12))
    conditions = tts_lm.prepare_conditions([{"speaker_wavs": VOICE, "control": "ok"}, {"cfg": "3.0"}])
    assert conditions.sum.shape == (2, 1, 64) and conditions.cross.shape == (2, 50, 64)
    with torch.no_grad():
        offline = tts_lm.temporal(tokens, conditions.sum, conditions.cross)
        with st.streaming(tts_lm, 2):
            tts_lm.set_cross_source(conditions.cross)
            steps = [tts_lm.temporal(tokens[..., t : t + 1], conditions.sum) for t in range(12)]
        out = tts_lm(tokens, conditions)  # the training forward takes conditions too
    assert rel_err(torch.cat(steps, 1), offline) < 1e-5
    assert out.logits.shape == (2, 8, 12, 64)


def test_absent_conditions_are_the_learnt_padding(tts_lm):
    provider = tts_lm.condition_provider
    out = provider(
        [{"control": None, "speaker_wavs": TensorCondition(torch.randn(3, 32), torch.zeros(3, dtype=bool))}]
    )
    pad = provider.conditioners
    assert torch.equal(out["control"], pad["control"].learnt_padding)
    assert torch.equal(out["speaker_wavs"], pad["speaker_wavs"].learnt_padding.expand(1, 3, 64))
    with pytest.raises(ValueError, match="valid values: 'ok', 'bad'"):
        provider([{"control": "great"}])
    with pytest.raises(ValueError, match="unknown conditions \\['style'\\]"):
        provider([{"style": "x"}])


@pytest.mark.parametrize("coef", [1.0, 2.0])
def test_items_with_their_own_conditions_equal_each_alone(tts_lm, coef):
    other = TensorCondition(torch.randn(50, 32), torch.arange(50) < 20)
    conditions = [{"speaker_wavs": VOICE, "cfg": "1.0"}, {"speaker_wavs": other, "control": "bad"}]
    gen = Generator(
        tts_lm, temp=0, temp_text=0, guidance=Guidance(coef, guide_text=False), audio_delay_steps=2
    )
    none = torch.zeros(2, 0, 1, dtype=torch.long)
    with gen.streaming(2, conditions):
        both = torch.cat([gen.step(none) for _ in range(8)][2:], -1)
    for b in range(2):
        with gen.streaming(1, conditions[b : b + 1]):
            alone = torch.cat([gen.step(none[:1]) for _ in range(8)][2:], -1)
        assert torch.equal(both[b : b + 1], alone)
    with gen.streaming(2, conditions[::-1]):  # conditions changed for one item mid-session
        gen.set_conditions([conditions[0]], items=[0])
        swapped = torch.cat([gen.step(none) for _ in range(8)][2:], -1)
    assert torch.equal(swapped[0], both[0])


def test_the_text_hook_feeds_the_depformer(moshi_lm):
    gen = Generator(moshi_lm, temp=0, temp_text=0, on_text=lambda text: torch.full_like(text, 5))
    codes = torch.zeros(1, 8, 1, dtype=torch.long)
    with gen.streaming(1):
        outs = [gen.step(codes) for _ in range(4)]
    assert all((o[:, 0] == 5).all() for o in outs[1:])


def test_audio_delay_forces_zero_tokens_and_skips_the_depformer(tts_lm, monkeypatch):
    calls = []
    original = tts_lm.depformer_step
    monkeypatch.setattr(
        tts_lm, "depformer_step", lambda k, *a, **kw: calls.append(k) or original(k, *a, **kw)
    )
    gen = Generator(tts_lm, temp=0.8, temp_text=0.8, seed=1, audio_delay_steps=3)
    with gen.streaming(1, [{"speaker_wavs": VOICE}]):
        frames = [gen.step(torch.zeros(1, 0, 1, dtype=torch.long)) for _ in range(8)]
    assert len(calls) == 8 * 5  # steps 3 to 7
    audio = torch.cat(frames[2:], -1)[0, 1:]  # frame t: codebook 0 from step t, others t + 2
    assert (audio[:, :3] == -1).all() and (audio[:, 3:] >= 0).all()


def test_guidance_needs_conditioners(moshi_lm):
    with (
        pytest.raises(ValueError, match="needs a model with conditioners"),
        Generator(moshi_lm, guidance=Guidance(2.0)).streaming(1),
    ):
        pass
    with (
        pytest.raises(ValueError, match="takes no conditions"),
        Generator(moshi_lm).streaming(1, [{"x": "y"}]),
    ):
        pass


def test_greedy_items_draw_no_random_numbers():
    gens = [make_generator(1, torch.device("cpu")), make_generator(1, torch.device("cpu"))]
    before = gens[0].get_state()
    sample(torch.randn(2, 10), [0.0, 1.0], [5, 5], gens)
    assert torch.equal(gens[0].get_state(), before) and not torch.equal(gens[1].get_state(), before)
