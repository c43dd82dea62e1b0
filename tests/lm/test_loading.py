"""Configs in Kyutai's format, weight layouts, dtypes, the hub, and text pieces."""

import json
import warnings

import pytest
import torch
from safetensors.torch import load_file

from moshi.lm import KyutaiConfig, LMConfig, load_lm
from moshi.lm.generator import Generator
from moshi.lm.text import TextTokenizer
from moshi.models import ModelFiles
from tests.support.fixtures import (
    FIXTURES,
    MOSHI_TINY,
    STT_TINY,
    config_of,
    fake_hub_cache,
    rel_err,
    save_weights,
)


def _config(path=MOSHI_TINY):
    return config_of(path)


def test_fixture_configs_parse_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        moshi = KyutaiConfig.parse(_config()).lm
        stt = KyutaiConfig.parse(_config(STT_TINY)).lm
    assert (moshi.dim, moshi.dep_q, moshi.n_q, moshi.context, moshi.hidden) == (64, 8, 16, 24, 176)
    assert (stt.dep_q, stt.num_user_streams, stt.extra_heads_num_heads, stt.max_delay) == (0, 32, 4, 0)


def test_released_7b_defaults():
    cfg = LMConfig()
    assert (cfg.hidden, cfg.depformer_hidden, cfg.max_delay, cfg.num_user_streams) == (11264, 2816, 1, 8)


def test_every_kind_of_key_is_accounted_for():
    cfg = _config()
    cfg |= {
        "moshi_name": "m.safetensors",
        "mimi_name": "c.safetensors",
        "tokenizer_name": "t.model",
        "model_type": "moshi",
        "lm_gen_config": {"temp": 0.6},
        "stt_config": {"audio_delay_seconds": 0.5},
        "model_id": {"sig": "abc"},
        "depformer_causal": True,
        "lora": False,
        "quantize": False,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parsed = KyutaiConfig.parse(cfg)
    assert parsed.moshi_name == "m.safetensors" and parsed.lm_gen_config == {"temp": 0.6}
    assert parsed.stt_config["audio_delay_seconds"] == 0.5 and parsed.model_id == {"sig": "abc"}


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("norm", "layer_norm", "config.norm='layer_norm' is not supported"),
        ("gating", "gelu", "config.gating"),
        ("kv_repeat", 2, "config.kv_repeat=2"),
        ("depformer_weights_per_step", False, "depformer_weights_per_step"),
        ("conditioners", {"x": {}}, "conditioners"),
    ],
)
def test_unsupported_architecture_is_an_error(key, value, match):
    with pytest.raises(ValueError, match=match):
        KyutaiConfig.parse(_config() | {key: value})


def test_unknown_key_is_named_in_a_warning():
    with pytest.warns(UserWarning, match="brand_new_knob"):
        KyutaiConfig.parse(_config() | {"brand_new_knob": 1})


def test_delays_must_match_streams():
    with pytest.raises(ValueError, match="delays must have 1 \\+ n_q = 17 entries"):
        KyutaiConfig.parse(_config() | {"delays": [0, 1]})


def test_split_attention_layout_loads_the_same(tmp_path, moshi_io):
    state = load_file(MOSHI_TINY / "weights.safetensors")
    split = {}
    for key, value in state.items():
        if key.endswith("self_attn.in_proj_weight"):
            parts = value.chunk(8 if key.startswith("depformer") else 1)
            split |= {key.replace("in_proj_weight", f"in_projs.{i}.weight"): p for i, p in enumerate(parts)}
        elif key.endswith("self_attn.out_proj.weight"):
            parts = value.chunk(8 if key.startswith("depformer") else 1)
            split |= {key.replace("out_proj.weight", f"out_projs.{i}.weight"): p for i, p in enumerate(parts)}
        else:
            split[key] = value
    model = load_lm(save_weights(tmp_path, split), MOSHI_TINY / "config.json")
    with torch.no_grad():
        assert rel_err(model(moshi_io["codes"]).text_logits, moshi_io["text_logits"]) < 1e-4


def test_loading_errors_name_the_keys(tmp_path):
    state = load_file(MOSHI_TINY / "weights.safetensors")
    del state["out_norm.alpha"]
    state["text_linear.weight"] = torch.zeros(101, 64)
    state["bonus.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as e:
        load_lm(save_weights(tmp_path, state), MOSHI_TINY / "config.json")
    msg = str(e.value)
    assert "missing keys (1): out_norm.alpha" in msg
    assert "unexpected keys (1): bonus.weight" in msg
    assert "text_linear.weight: expected [100, 64], found [101, 64]" in msg


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_loads_and_runs(moshi_io, dtype):
    model = load_lm(MOSHI_TINY / "weights.safetensors", MOSHI_TINY / "config.json", dtype=dtype)
    assert {p.dtype for p in model.parameters()} == {dtype}
    gen = Generator(model, temp=0, temp_text=0)
    with gen.streaming(2):
        for t in range(3):
            out = gen.step(moshi_io["user_codes"][..., t : t + 1])
    assert out.shape == (2, 9, 1) and out.min() >= 0


def test_bad_dtype():
    with pytest.raises(ValueError, match="dtype must be"):
        load_lm(MOSHI_TINY / "weights.safetensors", MOSHI_TINY / "config.json", dtype=torch.int8)


def test_hub_repo_with_config_json(tmp_path, monkeypatch, stt_io):
    """Like kyutai/stt-1b-en_fr: config.json names the files and says it is STT."""
    config = _config(STT_TINY) | {
        "model_type": "stt",
        "moshi_name": "stt.safetensors",
        "mimi_name": "mimi.safetensors",
        "tokenizer_name": "tok.model",
        "stt_config": {"audio_silence_prefix_seconds": 0.0, "audio_delay_seconds": 0.5},
        "lm_gen_config": {"temp": 0.0, "temp_text": 0.0, "top_k": 250, "top_k_text": 50},
    }
    fake_hub_cache(
        tmp_path,
        monkeypatch,
        "kyutai/stt-1b-en_fr",
        {
            "config.json": json.dumps(config).encode(),
            "stt.safetensors": STT_TINY / "weights.safetensors",
            "mimi.safetensors": FIXTURES / "mimi_tiny" / "weights.safetensors",
            "tok.model": FIXTURES / "tiny_spm_100.model",
        },
    )
    model = load_lm("kyutai/stt-1b-en_fr")
    assert model.config.dep_q == 0
    files = ModelFiles.resolve("kyutai/stt-1b-en_fr")
    assert files.model_type == "stt" and files.config.stt_config["audio_delay_seconds"] == 0.5
    assert files.lm_weights.name == "stt.safetensors" and files.tokenizer.name == "tok.model"
    assert files.config.lm_gen_config["top_k_text"] == 50


def test_hub_repo_without_config_json_is_moshi_7b(tmp_path, monkeypatch):
    """Like kyutai/moshiko-pytorch-bf16: no config.json, so the 7B architecture (which the
    tiny weights do not fit: the error says so)."""
    fake_hub_cache(
        tmp_path,
        monkeypatch,
        "kyutai/moshiko-pytorch-bf16",
        {"model.safetensors": MOSHI_TINY / "weights.safetensors"},
        absent=("config.json",),
    )
    with pytest.raises(ValueError, match=r"expected \[5632, 1024\], found \[176, 32\]"):
        load_lm("kyutai/moshiko-pytorch-bf16")
    with pytest.raises(ValueError, match="shape mismatches"):
        load_lm(None)


def test_local_model_directory_with_relative_names(tmp_path):
    """A config naming files next to it (how a directory of tiny models is served)."""
    config = _config() | {
        "moshi_name": "lm.safetensors",
        "mimi_name": "mimi.safetensors",
        "tokenizer_name": "tok.model",
        "mimi_config_name": "mimi.json",
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    for name, src in [
        ("lm.safetensors", MOSHI_TINY / "weights.safetensors"),
        ("mimi.safetensors", FIXTURES / "mimi_tiny" / "weights.safetensors"),
        ("mimi.json", FIXTURES / "mimi_tiny" / "config.json"),
        ("tok.model", FIXTURES / "tiny_spm_100.model"),
    ]:
        (tmp_path / name).write_bytes(src.read_bytes())
    files = ModelFiles.resolve(hf_repo=None, config=tmp_path / "config.json")
    assert files.load_lm(dtype=torch.float32).config.dim == 64
    mimi = files.load_mimi()
    assert mimi.num_codebooks == 8 and mimi.config.dimension == 32
    assert files.load_tokenizer().piece(5) == " hokopily"
    assert not files.load_tokenizer().user_turns
    # dialogue_config.user_text_delay_seconds: its text writes the user's words too
    config["dialogue_config"] = {"user_text_delay_seconds": 0.48}
    (tmp_path / "config.json").write_text(json.dumps(config))
    files = ModelFiles.resolve(hf_repo=None, config=tmp_path / "config.json")
    assert files.load_tokenizer().user_turns


def test_text_pieces():
    tok = TextTokenizer(FIXTURES / "tiny_spm_100.model")
    assert tok.piece(3) is None and tok.piece(0) is None  # PAD and end-of-padding never shown
    assert tok.piece(5) == " hokopily" and tok.piece(4) == " qu"
    assert tok.piece(100) is None
    assert tok.piece(2) is None and tok.piece(1) is None  # </s>, <s>: control pieces
    assert tok.decode([3, 5, 0, 4, 3]) == "hokopily qu"
    assert tok.encode("hokopily qu") == [5, 4]


def test_tokenizer_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        TextTokenizer(tmp_path / "missing.model")
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a SentencePiece model"):
        TextTokenizer(bad)


@pytest.mark.parametrize("bad", ["0.5", -1, True, [0.5]])
def test_the_users_words_delay_must_be_seconds(bad):
    with pytest.raises(ValueError, match=r"dialogue_config\.user_text_delay_seconds must be seconds >= 0"):
        KyutaiConfig.parse(_config() | {"dialogue_config": {"user_text_delay_seconds": bad}})
