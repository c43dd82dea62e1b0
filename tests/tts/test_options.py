"""The TTS part of config.json, and the runtime options' checks."""

import pytest

from moshi.lm import KyutaiConfig
from moshi.tts import TTSConfig, TTSOptions
from tests.support.fixtures import TTS_TINY, config_of


def _config(**changes):
    return KyutaiConfig.parse(config_of(TTS_TINY, **changes))


def test_tts_config():
    cfg = TTSConfig.parse(_config())
    assert (cfg.audio_delay, cfg.delay_steps, cfg.voice_suffix) == (0.32, 4, ".tiny0000@1.safetensors")
    assert TTSConfig.parse(_config(tts_config={"audio_delay": 1.28})).delay_steps == 16


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(model_type="moshi", tts_config={}), "not a text-to-speech model"),
        (dict(tts_config={"second_stream_ahead": 2}), "audio_delay is missing"),
        (dict(tts_config={"audio_delay": 1.0, "multistream": True}), "multistream=True is not supported"),
        (dict(tts_config={"audio_delay": -1}), "audio_delay must be a number >= 0"),
    ],
)
def test_bad_tts_config(changes, match):
    with pytest.raises(ValueError, match=match):
        TTSConfig.parse(_config(**changes))


def test_unknown_tts_config_keys_are_named():
    with pytest.warns(UserWarning, match="tts_config: ignoring unknown keys \\['speed'\\]"):
        TTSConfig.parse(_config(tts_config={"audio_delay": 0.32, "speed": 2}))


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(max_padding=-1), "max_padding must be"),
        (dict(padding_between=1.5), "padding_between must be"),
        (dict(max_steps=0), "max_steps must be"),
        (dict(guidance=0), "guidance must be"),
    ],
)
def test_bad_options(changes, match):
    with pytest.raises(ValueError, match=match):
        TTSOptions(**(dict(delay_steps=4) | changes))
