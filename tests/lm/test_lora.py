"""LoRA as a transform: merged weights give the logits of base + adapters; adapter files
round-trip (in Kyutai's names) and load onto a fresh base model."""

import copy

import pytest
import torch
from safetensors import safe_open

from moshi.lm import KyutaiConfig, LMModel, load_lm
from moshi.lm.lora import LoRAOptions, LoRAProjection, apply_lora, load_lora, merge_lora, save_lora
from tests.support.fixtures import FIXTURES


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: two OpenMP threads only slow down on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(name: str) -> LMModel:
    return load_lm(FIXTURES / name / "weights.safetensors", FIXTURES / name / "config.json")


def codes_for(model: LMModel, T: int = 12) -> torch.Tensor:
    cfg = model.config
    g = torch.Generator().manual_seed(1)
    codes = torch.randint(0, cfg.card, (2, cfg.num_streams, T), generator=g)
    codes[:, 0] = torch.randint(0, cfg.text_card, (2, T), generator=g)
    return codes


def logits(model: LMModel, codes: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(codes, model.prepare_conditions([{}] * codes.shape[0]) if model.has_conditions else None)
    return torch.cat([out.text_logits.flatten(), out.logits.flatten()])


def randomize_adapters(model: LMModel) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.05)


@pytest.mark.parametrize("name", ["moshi_lm_tiny", "stt_lm_tiny", "tts_lm_tiny"])
def test_merged_equals_base_plus_adapters(name):
    model = tiny(name)
    codes = codes_for(model)
    base = logits(model, codes)
    apply_lora(model, LoRAOptions(rank=4, scaling=2.0))
    torch.testing.assert_close(logits(model, codes), base, rtol=0, atol=1e-6)  # B = 0: no change
    assert all(("lora_" in n) == p.requires_grad for n, p in model.named_parameters())
    randomize_adapters(model)
    adapted = logits(model, codes)
    assert (adapted - base).abs().max() > 1e-3  # the adapters do something
    merge_lora(model)
    assert not any("lora" in n for n, _ in model.named_parameters())
    assert not any(isinstance(m, LoRAProjection) for m in model.modules())  # plain HostRows again
    torch.testing.assert_close(logits(model, codes), adapted, rtol=0, atol=1e-5)


def test_every_product_is_adapted():
    model = apply_lora(tiny("moshi_lm_tiny"), LoRAOptions(rank=2))
    names = {n.rsplit(".lora_", 1)[0] for n, _ in model.named_parameters() if ".lora_A" in n}
    assert "transformer.layers.1.self_attn.in_proj" in names
    assert "transformer.layers.0.gating.linear_out" in names
    assert "depformer.layers.1.self_attn.in_projs.7" in names
    assert "depformer.layers.0.self_attn.out_projs.3" in names
    assert "depformer.layers.0.self_attn.out_proj" not in names  # read through its slices only
    assert {"text_linear", "linears.7", "depformer_in.0"} <= names


def test_file_round_trip_in_kyutai_names(tmp_path):
    model = tiny("moshi_lm_tiny")
    options = LoRAOptions(rank=3, scaling=1.5, ft_embed=True, targets=("transformer.*", "linears.*"))
    apply_lora(model, options)
    randomize_adapters(model)
    with torch.no_grad():
        model.text_emb.weight.add_(0.1)
    codes = codes_for(model)
    expected = logits(model, codes)
    path = tmp_path / "lora.safetensors"
    save_lora(model, path, options)
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        assert f.metadata()["lora_scaling"] == "1.5"
    assert "transformer.layers.0.self_attn.in_projs.0.lora_A.weight" in keys
    assert "transformer.layers.0.self_attn.out_projs.0.lora_B.weight" in keys
    assert "text_emb.weight" in keys and not any(k.startswith("depformer.") for k in keys)
    fresh = load_lora(tiny("moshi_lm_tiny"), path)
    torch.testing.assert_close(logits(fresh, codes), expected, rtol=0, atol=1e-6)
    merged = merge_lora(copy.deepcopy(fresh))
    torch.testing.assert_close(logits(merged, codes), expected, rtol=0, atol=1e-5)


def test_bad_files_and_misuse(tmp_path):
    model = apply_lora(tiny("stt_lm_tiny"), LoRAOptions(rank=2))
    with pytest.raises(ValueError, match="already has LoRA"):
        apply_lora(model, LoRAOptions(rank=2))
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a LoRA safetensors"):
        load_lora(tiny("stt_lm_tiny"), bad)
    path = tmp_path / "lora.safetensors"
    save_lora(model, path, LoRAOptions(rank=2))
    with pytest.raises(ValueError, match="does not fit"):
        load_lora(tiny("moshi_lm_tiny"), path)
    with pytest.raises(ValueError, match="rank 5"):
        load_lora(tiny("stt_lm_tiny"), path, rank=5)
    assert KyutaiConfig.load(FIXTURES / "stt_lm_tiny" / "config.json").lm.dep_q == 0


def test_merged_state_dict_folds_without_touching_the_model():
    model = apply_lora(tiny("moshi_lm_tiny"), LoRAOptions(rank=2))
    randomize_adapters(model)
    codes = codes_for(model)
    expected = logits(model, codes)
    from moshi.lm.lora import merged_state_dict

    merged = merged_state_dict(model)
    assert any(".lora_" in n for n, _ in model.named_parameters())  # still adapted
    plain = tiny("moshi_lm_tiny")
    plain.load_state_dict(merged)
    torch.testing.assert_close(logits(plain, codes), expected, rtol=0, atol=1e-5)
