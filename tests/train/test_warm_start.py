"""`model.init_from`: a dialogue model starts from a speech-to-text model, hearing the user
exactly as the speech-to-text model heard its audio (Moshi's own streams start at zero)."""

import json

import pytest
import torch
from safetensors.torch import save_file

from moshi.lm.config import KyutaiConfig
from moshi.train.config import TrainConfig
from moshi.train.distributed import Dist
from moshi.train.lm import build_model, fresh_model
from tests.support.fixtures import FIXTURES, STT_CONFIG, config_of
from tests.support.train import tiny_config

CPU = torch.device("cpu")


def stt_raw(n_q: int = 8) -> dict:
    """The tiny speech-to-text model with the tiny dialogue model's sizes and 8 streams."""
    return config_of(
        FIXTURES / "stt_lm_tiny",
        n_q=n_q,
        delays=[0] * (1 + n_q),
        text_card=100,
        max_period=10000,
        stt_config=STT_CONFIG,
    )


def save_stt(folder, n_q: int = 8) -> torch.nn.Module:
    """A random speech-to-text model saved as a checkpoint's consolidated/ folder."""
    folder.mkdir()
    config = stt_raw(n_q)
    (folder / "config.json").write_text(json.dumps(config))
    torch.manual_seed(1)
    model = fresh_model(KyutaiConfig.parse(config), CPU, std=0.3).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
    return model


def build(tmp_path, **model_overrides):
    """The tiny dialogue model fresh from its config, warm-started from tmp_path/stt."""
    config_path = tmp_path / "dialogue.json"
    config_path.write_text(json.dumps(config_of(FIXTURES / "moshi_lm_tiny", **model_overrides)))
    config = tiny_config(
        tmp_path / "run", model={"config": str(config_path), "init_from": str(tmp_path / "stt")}
    )
    return build_model(TrainConfig.from_dict(config), Dist()).model.eval()


def test_the_dialogue_model_hears_the_user_as_the_stt_model_did(tmp_path):
    stt = save_stt(tmp_path / "stt")
    dialogue = build(tmp_path)
    T = 10
    g = torch.Generator().manual_seed(0)
    text = torch.randint(0, 100, (1, 1, T), generator=g)
    user = torch.randint(0, 64, (1, 8, T), generator=g)
    moshi = torch.randint(0, 64, (1, 8, T), generator=g)  # anything: its embeddings are zero
    with torch.no_grad():
        heard = stt.temporal(torch.cat([text, user], 1))
        ours = dialogue.temporal(torch.cat([text, moshi, user], 1))
        torch.testing.assert_close(ours, heard, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(dialogue.text_linear(ours), stt.text_linear(heard), rtol=1e-4, atol=1e-5)
        assert all(float(dialogue.emb[k].weight.abs().max()) == 0 for k in range(8))
        assert float(dialogue.linears[0].weight.std()) > 0  # the depformer stays fresh


def test_a_different_size_is_named_with_both_shapes(tmp_path):
    save_stt(tmp_path / "stt")
    shapes = r"model.init_from: .* has shape \(.*64\), the model expects \(.*32\)"
    with pytest.raises(ValueError, match=shapes):
        build(tmp_path, dim=32)


def test_a_source_hearing_other_streams_is_refused(tmp_path):
    save_stt(tmp_path / "stt", n_q=4)
    with pytest.raises(ValueError, match=r"model.init_from hears 4 audio streams, the model hears 8"):
        build(tmp_path)


def test_a_missing_source_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"has no config\.json"):
        build(tmp_path)


def test_init_from_needs_a_fresh_model(tmp_path):
    with pytest.raises(ValueError, match=r"init_from needs config\.model\.config"):
        TrainConfig.from_dict(tiny_config(tmp_path, model={"init_from": str(tmp_path)}))


def test_a_deeper_model_starts_as_its_source(tmp_path):
    """Two more layers than the speech-to-text source: they start as the identity, so the
    deeper model reads the audio exactly as the source did, and their zeroed linears learn."""
    stt = save_stt(tmp_path / "stt")
    deeper = {**stt_raw(), "num_layers": stt.config.num_layers + 2}
    (tmp_path / "deep.json").write_text(json.dumps(deeper))
    model = {"config": str(tmp_path / "deep.json"), "init_from": str(tmp_path / "stt")}
    deep = build_model(TrainConfig.from_dict(tiny_config(tmp_path / "run", model=model)), Dist()).model
    assert len(deep.transformer.layers) == len(stt.transformer.layers) + 2
    g = torch.Generator().manual_seed(0)
    tokens = torch.cat(
        [torch.randint(0, 100, (1, 1, 10), generator=g), torch.randint(0, 64, (1, 8, 10), generator=g)], 1
    )
    with torch.no_grad():
        torch.testing.assert_close(deep.eval().temporal(tokens), stt.temporal(tokens), rtol=1e-4, atol=1e-5)
    new = deep.transformer.layers[-1]
    assert float(new.self_attn.out_proj.weight.detach().abs().max()) == 0
    assert float(new.self_attn.in_proj_weight.detach().std()) > 0  # the rest of a new layer stays fresh
    deep.train()
    deep.text_linear(deep.temporal(tokens)).square().mean().backward()
    assert (
        new.gating.linear_out.weight.grad is not None
        and float(new.gating.linear_out.weight.grad.abs().max()) > 0
    )
