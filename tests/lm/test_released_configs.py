"""Every shape of released Kyutai configuration loads: `depformer_dim_feedforward: null`,
`text_card_out`, Kyutai's q8 files (`quantize: true`), and a clear error for what is not a
Moshi-family config."""

import json
import warnings

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from moshi.kernels.int8 import Int8Linear
from moshi.lm import KyutaiConfig, LMConfig, LMModel, load_lm
from moshi.lm.generator import Generator
from moshi.lm.loading import Q8_SCALE_SUFFIX, dequantize_q8
from moshi.models import ModelFiles
from tests.support.fixtures import FIXTURES, MOSHI_TINY, config_of, rel_err, save_weights

STT_26B = FIXTURES / "stt_26b_config.json"  # kyutai/stt-2.6b-en's config.json, as published
STT_26B_FILE_BYTES = 5_234_275_128  # its model.safetensors (public file listing)
# Dequantizing int8 (127 levels per row) moves each weight by at most 0.4% of its row's largest:
# the tiny model's logits move by less than this, relative to their largest.
Q8_LOGITS_RTOL = 0.03


def _config(**changes) -> dict:
    return config_of(MOSHI_TINY, **changes)


def test_depformer_feedforward_null_is_kyutais_default(moshi_io):
    """null: int(hidden_scale * depformer_dim), as Kyutai's LMModel (132 for the tiny model,
    4224 for the 7B); the tiny weights load and give the same logits."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = KyutaiConfig.parse(_config(depformer_dim_feedforward=None))
    assert cfg.lm.depformer_feedforward == 132 and cfg.lm.depformer_hidden == 88
    model = load_lm(MOSHI_TINY / "weights.safetensors", cfg)
    with torch.no_grad():
        assert rel_err(model(moshi_io["codes"]).text_logits, moshi_io["text_logits"]) < 1e-4
    manifest = json.loads((FIXTURES / "moshi_7b_checkpoint_keys.json").read_text())["tensors"]
    with torch.device("meta"):
        big = LMModel(KyutaiConfig.parse({"depformer_dim_feedforward": None}).lm)
    assert {k: list(v.shape) for k, v in big.state_dict().items()} == manifest


def test_stt_26b_config_builds_the_released_file():
    """The published config (depformer_dim_feedforward null, dep_q 0) parses without a
    warning; a bf16 safetensors file of our model's keys and shapes has exactly the size of
    the released model.safetensors (8-byte length, the header JSON padded to 8 bytes, no
    metadata, tensors in name order) -- a change of any name or shape would show."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = KyutaiConfig.load(STT_26B)
    assert (cfg.model_type, cfg.stt_config["audio_delay_seconds"], cfg.model_id["epoch"]) == ("stt", 2.5, 50)
    with torch.device("meta"):
        state = LMModel(cfg.lm).state_dict()
    header, offset = {}, 0
    for name in sorted(state):
        size = 2 * state[name].numel()
        header[name] = {
            "dtype": "BF16",
            "shape": list(state[name].shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    text = json.dumps(header, separators=(",", ":"))
    assert 8 + -(-len(text) // 8) * 8 + offset == STT_26B_FILE_BYTES
    assert len(state) == 323 and list(state["text_linear.weight"].shape) == [4000, 2048]


def test_text_card_out(tmp_path, moshi_io):
    """The text head's size when it differs from text_card (the input embedding keeps
    text_card + 1 rows); equal to text_card it changes nothing."""
    same = load_lm(MOSHI_TINY / "weights.safetensors", _config(text_card_out=100))
    with torch.no_grad():
        assert rel_err(same(moshi_io["codes"]).text_logits, moshi_io["text_logits"]) < 1e-4
    state = load_file(MOSHI_TINY / "weights.safetensors")
    state["text_linear.weight"] = state["text_linear.weight"][:40].clone()
    with pytest.raises(ValueError, match=r"text_linear.weight: expected \[100, 64\], found \[40, 64\]"):
        load_lm(save_weights(tmp_path, state), MOSHI_TINY / "config.json")
    small = load_lm(save_weights(tmp_path, state), _config(text_card_out=40))
    assert small.text_emb.weight.shape[0] == 101 and small.config.text_out_card == 40
    with torch.no_grad():
        logits = small(moshi_io["codes"]).text_logits
    assert logits.shape[-1] == 40
    torch.testing.assert_close(logits, moshi_io["text_logits"][..., :40], rtol=1e-4, atol=1e-4)
    gen = Generator(small, temp=0, temp_text=0)
    with gen.streaming(1):
        for t in range(3):
            out = gen.step(moshi_io["user_codes"][:1, :, t : t + 1])
    assert out is not None and 0 <= int(out[0, 0, 0]) < 40
    for bad in (0, "40"):
        with pytest.raises(ValueError, match="text_card_out must be a positive integer"):
            KyutaiConfig.parse(_config(text_card_out=bad))


def _q8(state: dict[str, torch.Tensor], linear_weights: set[str]) -> dict[str, torch.Tensor]:
    """Kyutai's q8 layout (scripts/export_quantized.py through bitsandbytes): each linear
    weight int8 [out, in] = round(w * 127 / absmax), and `<weight>_scb` float32 [out] = absmax."""
    out = dict(state)
    for name in linear_weights:
        w = state[name].float()
        absmax = w.abs().amax(dim=1).clamp(min=1e-12)
        out[name] = torch.round(w * 127 / absmax[:, None]).to(torch.int8)
        out[name + Q8_SCALE_SUFFIX] = absmax
    return out


def test_q8_files_load_without_bitsandbytes(tmp_path, moshi_io):
    float_model = load_lm(MOSHI_TINY / "weights.safetensors", MOSHI_TINY / "config.json")
    linears = {f"{n}.weight" for n, m in float_model.named_modules() if type(m) is nn.Linear}
    linears |= {n for n, _ in float_model.named_parameters() if n.endswith("in_proj_weight")}
    assert "text_linear.weight" in linears and "depformer_in.0.weight" in linears
    q8 = _q8(load_file(MOSHI_TINY / "weights.safetensors"), linears)
    path = save_weights(tmp_path, q8, "model.q8.safetensors")

    model = load_lm(path, _config(quantize=True))
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    with torch.no_grad():
        ours, ref = model(moshi_io["codes"]), float_model(moshi_io["codes"])
    assert rel_err(ours.text_logits, ref.text_logits) < Q8_LOGITS_RTOL
    assert rel_err(ours.logits, ref.logits) < Q8_LOGITS_RTOL
    # Exactly the float model of the dequantized weights, also in bfloat16.
    dequantized = dequantize_q8(q8, True)
    assert all(dequantized[k].dtype == torch.float32 for k in linears)
    exact = load_lm(save_weights(tmp_path, dequantized), MOSHI_TINY / "config.json")
    with torch.no_grad():
        torch.testing.assert_close(ours.text_logits, exact(moshi_io["codes"]).text_logits)
    # The int8 kernels' own row-absmax quantization gives back the file's int8 values.
    assert torch.equal(Int8Linear(model.text_linear.weight).weight, q8["text_linear.weight"])
    half = load_lm(path, _config(quantize=True), dtype=torch.bfloat16)
    assert half.text_linear.weight.dtype == torch.bfloat16

    with pytest.raises(ValueError, match="the config must say quantize: true"):
        load_lm(path, MOSHI_TINY / "config.json")
    with pytest.raises(ValueError, match="config says quantize: true but the weights have no int8"):
        load_lm(MOSHI_TINY / "weights.safetensors", _config(quantize=True))
    broken = dict(q8, **{"text_linear.weight": q8["text_linear.weight"][:5]})
    with pytest.raises(ValueError, match=r"text_linear.weight_scb \[100\] needs text_linear.weight int8"):
        dequantize_q8(broken, True)
    with pytest.raises(ValueError, match=r"config\.quantize must be true or false"):
        KyutaiConfig.parse(_config(quantize="yes"))


@pytest.mark.parametrize(
    "config, match",
    [
        (
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096},
            r"not a Moshi-family config .*architectures=\['LlamaForCausalLM'\].*transformers",
        ),
        ({"model_type": "whisper"}, r"config.model_type='whisper' is not a Moshi-family model"),
        ({"model_id": "kyutai/stt-2.6b-en"}, r"config.model_id must be a JSON object .*got str"),
        ({"stt_config": [2.5, 1.0]}, r"config.stt_config must be a JSON object .*got list"),
    ],
)
def test_not_a_moshi_config_is_named(tmp_path, config, match):
    """Never read as the Moshi 7B: the parser, ModelFiles and load_lm all refuse it."""
    with pytest.raises(ValueError, match=match):
        KyutaiConfig.parse(config)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=match):
        ModelFiles.resolve(str(tmp_path))
    with pytest.raises(ValueError, match=match):
        load_lm(MOSHI_TINY / "weights.safetensors", path)


def test_lm_config_checks_the_new_sizes():
    with pytest.raises(ValueError, match="depformer_dim_feedforward must be a positive integer"):
        LMConfig(depformer_dim_feedforward=0)
    assert (
        LMConfig().depformer_feedforward == 4224
        and LMConfig(depformer_dim_feedforward=3072).depformer_hidden == 2048
    )
