"""The TTS on a CUDA GPU (skipped without one): parity with CUDA graphs off and on, and
a bfloat16 run that keeps the conditioners in float32."""

import pytest
import torch

from moshi.lm import load_lm
from tests.support.fixtures import TTS_CFG_TINY, TTS_TINY, fixture_io, fixture_meta
from tests.support.tts import make_tts

pytestmark = pytest.mark.requires_cuda

CASES = {"tts_lm_tiny": (TTS_TINY, {}, 2.0), "tts_cfg_lm_tiny": (TTS_CFG_TINY, {"guidance": 2.0}, None)}


@pytest.mark.parametrize("graphs", [False, True])
@pytest.mark.parametrize("name", sorted(CASES))
def test_tts_parity_on_cuda(name, graphs):
    folder, options, cfg = CASES[name]
    lm = load_lm(folder / "weights.safetensors", folder / "config.json", device="cuda")
    tts = make_tts(lm, cuda_graphs=graphs, **options)
    assert tts.generator.cuda_graphs == graphs
    assert tts.keep_session == graphs  # graphs are captured once, kept across generations
    for _ in range(2):
        result = tts.generate(fixture_meta(name)["script"], [folder / "voice.safetensors"], cfg=cfg)
        assert torch.equal(result.frames, fixture_io(name)["frames"])


def test_bfloat16_on_cuda():
    lm = load_lm(
        TTS_TINY / "weights.safetensors", TTS_TINY / "config.json", device="cuda", dtype=torch.bfloat16
    )
    assert lm.condition_provider.conditioners["cfg"].embed.weight.dtype == torch.float32
    result = make_tts(lm, temp=0.6, seed=3).generate(
        ["hokopily qu"], [TTS_TINY / "voice.safetensors"], cfg=2.0
    )
    assert result.end_step is not None and (result.audio_codes >= 0).all()
