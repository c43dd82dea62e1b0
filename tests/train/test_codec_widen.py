"""A trained decoder widened (Net2WiderNet) computes what it did, and trains at its new width
from weights of the narrow one while the codes stay."""

import json

import pytest
import torch

from moshi.codec import MimiConfig, load_mimi, save_mimi
from moshi.train.codec.config import CodecModelConfig
from moshi.train.codec.train import build_trainer
from moshi.train.codec.widen import widen_decoder
from tests.support.fixtures import FIXTURES, config_of
from tests.support.train import TINY_MIMI, clips
from tests.support.train import codec_config as config

TINY = FIXTURES / "mimi_tiny"


def _decoder_parameters(mimi) -> int:
    return sum(p.numel() for p in mimi.decoder.parameters())


def test_widened_decoder_computes_the_same():
    narrow = load_mimi(TINY / "weights.safetensors", TINY / "config.json")
    wide = widen_decoder(narrow, 6, seed=1)  # 1.5x: channels copied unevenly
    assert wide.config.decoder_filters == 6 and wide.config.n_filters == narrow.config.n_filters
    assert _decoder_parameters(wide) > 2 * _decoder_parameters(narrow)
    pcm = 0.3 * clips(0.24)[:1]
    codes = narrow.encode(pcm)
    assert torch.equal(wide.encode(pcm), codes)
    expected = narrow.decode(codes)
    assert expected.abs().max() > 1e-3  # something to compare
    torch.testing.assert_close(wide.decode(codes), expected, atol=1e-5, rtol=1e-4)
    # the copies are split unevenly, so training can tell them apart
    weight = wide.decoder.model[2].convtr.weight  # [in, out, K]
    narrow_weight = narrow.decoder.model[2].convtr.weight
    copies = [j for j in range(weight.shape[0]) if j >= narrow_weight.shape[0]]
    assert copies
    for j in copies[:4]:
        matches = [i for i in range(narrow_weight.shape[0]) if torch.allclose(weight[i], weight[j], atol=0)]
        assert not matches, (j, matches)
    with pytest.raises(ValueError, match="at least the decoder's 4"):
        widen_decoder(narrow, 3)


def test_config_round_trip_names_the_decoder_width_only_when_set():
    plain = MimiConfig.preset("mimi-small")
    assert "decoder_n_filters" not in plain.to_kyutai()["seanet"]
    wide = MimiConfig.preset("mimi-small", decoder_n_filters=32)
    assert wide.to_kyutai()["seanet"]["decoder_n_filters"] == 32
    assert MimiConfig.from_kyutai(wide.to_kyutai()) == wide
    with pytest.raises(ValueError, match="decoder_n_filters must be positive"):
        MimiConfig.preset("mimi-small", decoder_n_filters=0)


def test_a_wider_decoder_trains_from_narrow_weights(tmp_path):
    """model.mimi asks for a wider decoder than the weights': build_mimi widens it, the
    decoder alone trains, the codes stay, and the result saves and loads at its width."""
    pcm = 0.3 * clips(0.16)
    start = build_trainer(config(tmp_path / "narrow"), torch.device("cpu"))
    start.step(pcm, 0)  # seeds the codebooks
    save_mimi(start.generator.mimi, tmp_path / "n.safetensors", tmp_path / "n.json")
    n_q = TINY_MIMI["total_codebooks"]
    narrow = load_mimi(tmp_path / "n.safetensors", tmp_path / "n.json", num_codebooks=n_q)
    assert narrow.config.decoder_filters == TINY_MIMI["n_filters"] == 4
    model = CodecModelConfig(
        mimi={**TINY_MIMI, "decoder_n_filters": 8}, weights=str(tmp_path / "n.safetensors"), decoder_only=True
    )
    trainer = build_trainer(config(tmp_path, model=model), torch.device("cpu"))
    wide = trainer.generator.mimi
    assert wide.config.decoder_filters == 8
    codes = narrow.encode(pcm)
    torch.testing.assert_close(wide.eval().decode(codes), narrow.decode(codes), atol=1e-5, rtol=1e-4)
    first = trainer.step(pcm, 0)["mel"]
    for step in range(1, 6):
        last = trainer.step(pcm, step)["mel"]
    assert last < first
    wide.eval()
    assert torch.equal(wide.encode(pcm), codes)
    save_mimi(wide, tmp_path / "w.safetensors", tmp_path / "w.json")
    again = load_mimi(tmp_path / "w.safetensors", tmp_path / "w.json", num_codebooks=wide.num_codebooks)
    assert again.config.decoder_filters == 8
    torch.testing.assert_close(again.decode(codes), wide.decode(codes))


def test_weights_without_a_decoder_are_named_by_the_loader(tmp_path):
    from safetensors.torch import save_file

    save_file({"something.else": torch.zeros(2)}, tmp_path / "x.safetensors")
    weights = str(tmp_path / "x.safetensors")
    model = CodecModelConfig(mimi={**TINY_MIMI, "decoder_n_filters": 8}, weights=weights)
    with pytest.raises(ValueError, match="does not fit this model"):
        build_trainer(config(tmp_path, model=model), torch.device("cpu"))


def test_a_torch_checkpoint_widens_too(tmp_path):
    """Weights in a torch file (what load_mimi also reads) are measured and widened alike."""
    from safetensors.torch import load_file

    torch.save(load_file(TINY / "weights.safetensors"), tmp_path / "w.pt")
    narrow = load_mimi(TINY / "weights.safetensors", TINY / "config.json")
    wider = config_of(TINY)
    wider["seanet"]["decoder_n_filters"] = 8
    (tmp_path / "wide.json").write_text(json.dumps(wider))
    model = CodecModelConfig(config=str(tmp_path / "wide.json"), weights=str(tmp_path / "w.pt"))
    wide = build_trainer(config(tmp_path, model=model), torch.device("cpu")).generator.mimi.eval()
    assert wide.config.decoder_filters == 8
    codes = narrow.encode(0.3 * clips(0.16)[:1])
    torch.testing.assert_close(wide.decode(codes), narrow.decode(codes), atol=1e-5, rtol=1e-4)
