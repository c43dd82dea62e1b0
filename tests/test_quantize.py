"""The opt-in low-precision weights (moshi.quantize) agree with float32 on the tiny models
as often as stated: greedy tokens of the LMs (teacher-forced), codes of Mimi on speech."""

import pytest
import torch

from moshi import quantize
from moshi.audio import read_audio
from moshi.codec import load_mimi
from moshi.kernels.bf16 import Bf16Linear
from moshi.lm import load_lm
from tests.support.fixtures import MIMI_TINY, MOSHI_TINY, SPEECH, STT_TINY, fixture_io

# Measured on x86-64 (AVX-512 + BF16, torch 2.13): moshi 0.999 / 0.994, stt 1.0 / 1.0,
# Mimi 1.0 / 0.995 (bfloat16 / int8, 2 s of speech). The thresholds leave room for other CPUs' sums.
LM_AGREE = 0.97
MIMI_AGREE = 0.97


def _codes(name: str) -> torch.Tensor:
    io = fixture_io(name)
    if "codes" in io:
        return io["codes"]
    return torch.cat([io["greedy_text"], io["audio_codes"]], 1)  # speech-to-text: [B, 1 + 32, T]


@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
@pytest.mark.parametrize("folder,name", [(MOSHI_TINY, "moshi_lm_tiny"), (STT_TINY, "stt_lm_tiny")])
def test_lm_greedy_tokens_agree(folder, name, dtype):
    lm = load_lm(folder / "weights.safetensors", folder / "config.json")
    assert quantize.agreement(lm, _codes(name), dtype) >= LM_AGREE
    assert type(lm.text_linear) is torch.nn.Linear  # the model measured against is untouched


@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
def test_mimi_codes_agree_on_speech(dtype):
    mimi = load_mimi(MIMI_TINY / "weights.safetensors", MIMI_TINY / "config.json")
    pcm = torch.from_numpy(read_audio(SPEECH))[None, None]
    pcm = pcm[..., : 2 * mimi.sample_rate // mimi.frame_size * mimi.frame_size]  # 2 s
    assert quantize.agreement(mimi, pcm, dtype) >= MIMI_AGREE


def test_bfloat16_transform_and_bad_dtypes():
    lm = load_lm(MOSHI_TINY / "weights.safetensors", MOSHI_TINY / "config.json")
    quantize.apply_lm(lm, "bfloat16")
    assert isinstance(lm.text_linear, Bf16Linear)
    assert isinstance(lm.transformer.layers[0].self_attn.in_proj, Bf16Linear)
    with pytest.raises(ValueError, match="must be one of"):
        quantize.apply_lm(lm, "int4")
    with pytest.raises(ValueError, match="needs a float32 LM"):
        quantize.apply_lm(lm.to(torch.bfloat16))
