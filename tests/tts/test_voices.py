"""Voices (local files, names in kyutai/tts-voices) and the CFG condition, with their errors."""

import pytest
import torch
from safetensors.torch import save_file

from moshi.tts.voices import MAX_SPEAKERS, resolve_voice, voice_suffix
from tests.support.fixtures import TTS_CFG_TINY, TTS_TINY, fake_hub_cache
from tests.support.tts import make_tts

VOICE = TTS_TINY / "voice.safetensors"  # speaker_wavs [1, 32, 10]
SUFFIX = ".tiny0000@1.safetensors"


def test_suffix_from_model_id():
    assert voice_suffix({"sig": "1e68beda", "epoch": 240}) == ".1e68beda@240.safetensors"
    assert voice_suffix({}) == ""
    with pytest.raises(ValueError, match="sig"):
        voice_suffix({"epoch": 1})


def test_voices_are_laid_side_by_side(tts):
    c = tts.conditions([VOICE, VOICE], cfg=2.0)
    wav = c["speaker_wavs"]
    assert wav.data.shape == (MAX_SPEAKERS * 10, 32) and wav.mask.tolist() == [True] * 20 + [False] * 30
    assert c["cfg"] == "2.0" and c["control"] == "ok"


def test_a_voice_name_is_found_in_the_voice_repo(tmp_path, monkeypatch, tts):
    name = "expresso/ex03-ex01_happy_001_channel1_334s.wav"
    fake_hub_cache(tmp_path / "hub", monkeypatch, "kyutai/tts-voices", {name + SUFFIX: VOICE})
    assert resolve_voice(name, SUFFIX).name == "ex03-ex01_happy_001_channel1_334s.wav" + SUFFIX
    from_repo = tts.generate(["qu hokopily"], voices=[name], cfg=2.0)
    local = tts.generate(["qu hokopily"], voices=[VOICE], cfg=2.0)
    assert torch.equal(from_repo.frames, local.frames)


def test_a_missing_voice_is_a_clear_error(tmp_path, monkeypatch, tts):
    fake_hub_cache(tmp_path / "hub", monkeypatch, "kyutai/tts-voices", {})
    with pytest.raises(FileNotFoundError, match=r"no voice 'nobody/here\.wav'.*kyutai/tts-voices"):
        tts.conditions(["nobody/here.wav"])
    with pytest.raises(FileNotFoundError, match="no such voice file"):
        tts.conditions([tmp_path / "absent.safetensors"])


@pytest.mark.parametrize(
    "tensors, match",
    [
        ({"voice": torch.zeros(1, 32, 10)}, "no 'speaker_wavs' tensor"),
        ({"speaker_wavs": torch.zeros(1, 16, 10)}, r"must have shape \[1, 32, T\], got \[1, 16, 10\]"),
        ({"speaker_wavs": torch.zeros(32, 10)}, r"must have shape \[1, 32, T\]"),
    ],
)
def test_a_wrong_voice_file_is_a_clear_error(tmp_path, tts, tensors, match):
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path))
    with pytest.raises(ValueError, match=match):
        tts.conditions([path])


def test_too_many_voices(tts):
    with pytest.raises(ValueError, match="1 to 5 voices"):
        tts.conditions([VOICE] * 6)


def test_unsupported_cfg_lists_the_valid_values(tts):
    with pytest.raises(ValueError, match=r"cfg=2.2 .* valid: 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0"):
        tts.conditions([VOICE], cfg=2.2)
    assert tts.conditions([VOICE], cfg=3)["cfg"] == "3.0"


def test_cfg_as_a_condition_needs_a_distilled_model(tts_cfg_lm):
    tts = make_tts(tts_cfg_lm, guidance=2.0)
    with pytest.raises(ValueError, match=r"TTS\(guidance="):
        tts.conditions([TTS_CFG_TINY / "voice.safetensors"], cfg=2.0)
