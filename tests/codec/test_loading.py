"""Loading Kyutai's checkpoint layout: the full-size key manifest, errors, hub, configs."""

import json
import warnings

import pytest
import torch
from safetensors.torch import load_file

from moshi.codec import MIMI_NAME, Mimi, MimiConfig, load_mimi
from moshi.codec.loading import checkpoint_to_ours
from tests.support.fixtures import FIXTURES, MIMI_TINY, config_of, fake_hub_cache, save_weights


def test_full_size_model_matches_released_manifest():
    manifest = json.loads((FIXTURES / "mimi_checkpoint_keys.json").read_text())["tensors"]
    with torch.device("meta"):
        model = Mimi(MimiConfig())
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    mapped = {checkpoint_to_ours(k): shape for k, shape in manifest.items()}
    assert len(mapped) == len(manifest)  # the mapping is one-to-one
    assert mapped == ours


def test_released_frame_facts():
    cfg = MimiConfig()
    assert (cfg.frame_size, cfg.hop_length, cfg.downsample_stride) == (1920, 960, 2)


@pytest.fixture
def tiny_state():
    return load_file(MIMI_TINY / "weights.safetensors")


def test_missing_and_unexpected_keys_are_named(tmp_path, tiny_state):
    tiny_state.pop("decoder.model.0.conv.conv.bias")
    tiny_state["decoder.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as e:
        load_mimi(save_weights(tmp_path, tiny_state), MIMI_TINY / "config.json")
    msg = str(e.value)
    assert "missing keys (1): decoder.model.0.conv.bias" in msg
    assert "unexpected keys (1): decoder.extra.weight" in msg


def test_shape_mismatch_names_expected_and_found(tmp_path, tiny_state):
    tiny_state["upsample.convtr.convtr.convtr.weight"] = torch.zeros(32, 1, 5)
    with pytest.raises(
        ValueError, match=r"upsample.convtr.weight: expected \[32, 1, 4\], found \[32, 1, 5\]"
    ):
        load_mimi(save_weights(tmp_path, tiny_state), MIMI_TINY / "config.json")


def test_released_config_does_not_fit_tiny_weights():
    with pytest.raises(ValueError, match="shape mismatches"):
        load_mimi(MIMI_TINY / "weights.safetensors")


def test_not_a_safetensors_file(tmp_path):
    path = tmp_path / "mimi.safetensors"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="not a safetensors file"):
        load_mimi(path, MIMI_TINY / "config.json")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_mimi(tmp_path / "nope.safetensors", MIMI_TINY / "config.json")


def test_split_attention_key_names_load(tmp_path, tiny_state, tiny_io):
    """The reference's newer code writes `in_projs.0.weight` / `out_projs.0.weight`."""
    split = {}
    for k, v in tiny_state.items():
        k = k.replace("self_attn.in_proj_weight", "self_attn.in_projs.0.weight")
        split[k.replace("self_attn.out_proj.weight", "self_attn.out_projs.0.weight")] = v
    assert any("in_projs.0" in k for k in split)
    mimi = load_mimi(save_weights(tmp_path, split), MIMI_TINY / "config.json")
    assert torch.equal(mimi.encode(tiny_io["pcm"]), tiny_io["codes"])


def test_file_uri_and_torch_checkpoint(tmp_path, tiny_state, tiny_io):
    mimi = load_mimi(f"file://{MIMI_TINY / 'weights.safetensors'}", MIMI_TINY / "config.json")
    assert torch.equal(mimi.encode(tiny_io["pcm"]), tiny_io["codes"])
    pt = tmp_path / "mimi.pt"
    torch.save({"model": tiny_state}, pt)
    mimi = load_mimi(pt, config_of(MIMI_TINY))
    assert torch.equal(mimi.encode(tiny_io["pcm"]), tiny_io["codes"])


def test_hub_download_through_the_cache(tmp_path, monkeypatch, tiny_io):
    fake_hub_cache(
        tmp_path, monkeypatch, "kyutai/moshiko-pytorch-bf16", {MIMI_NAME: MIMI_TINY / "weights.safetensors"}
    )
    for spec in ("kyutai/moshiko-pytorch-bf16", f"hf://kyutai/moshiko-pytorch-bf16/{MIMI_NAME}"):
        mimi = load_mimi(spec, MIMI_TINY / "config.json")
        assert torch.equal(mimi.encode(tiny_io["pcm"]), tiny_io["codes"])


def test_hub_default_repo_when_weights_is_none(tmp_path, monkeypatch, tiny_io):
    fake_hub_cache(
        tmp_path, monkeypatch, "kyutai/moshiko-pytorch-bf16", {MIMI_NAME: MIMI_TINY / "weights.safetensors"}
    )
    mimi = load_mimi(None, MIMI_TINY / "config.json")
    assert torch.equal(mimi.encode(tiny_io["pcm"]), tiny_io["codes"])


def test_hub_missing_file_is_a_clear_error(tmp_path, monkeypatch):
    fake_hub_cache(tmp_path, monkeypatch, "kyutai/moshiko-pytorch-bf16", {})
    with pytest.raises(
        FileNotFoundError, match=r"could not get 'tokenizer-e351c8d8-checkpoint125\.safetensors'"
    ):
        load_mimi("kyutai/moshiko-pytorch-bf16", MIMI_TINY / "config.json")


def test_config_unsupported_value_is_an_error():
    cfg = config_of(MIMI_TINY)
    cfg["transformer"]["norm"] = "rms_norm"
    with pytest.raises(ValueError, match=r"transformer.norm='rms_norm' is not supported"):
        MimiConfig.from_kyutai(cfg)


def test_config_unknown_key_warns():
    cfg = config_of(MIMI_TINY)
    cfg["seanet"]["shiny_new_option"] = 3
    with pytest.warns(UserWarning, match="shiny_new_option"):
        parsed = MimiConfig.from_kyutai(cfg)
    assert parsed.n_filters == 4


def test_tiny_config_parses_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = MimiConfig.from_kyutai(MIMI_TINY / "config.json")
    assert (cfg.dimension, cfg.codebook_size, cfg.context, cfg.total_codebooks) == (32, 64, 20, 32)
