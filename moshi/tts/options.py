"""The TTS's runtime options (Kyutai's defaults), and its part of a model's config.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..audio import FRAME_RATE
from ..config_reader import ConfigReader
from ..lm.config import KyutaiConfig
from .voices import voice_suffix

MAX_GUIDANCE = 10.0  # classifier-free guidance coefficients beyond are refused


@dataclass(frozen=True)
class TTSOptions:
    delay_steps: int  # the audio lags the text by this many steps
    second_stream_ahead: int = 0  # > 0: a second text stream reads this many words ahead
    temp: float = 0.6  # sampling temperature of text and audio tokens (0: greedy)
    guidance: float = 1.0  # real classifier-free guidance coefficient (doubles the batch) when != 1
    initial_padding: int = 2  # steps of silence before the first word
    max_padding: int = 8  # the model must start the next word within this many steps
    final_padding: int = 4  # steps generated after the audio of the last word
    padding_between: int = 1  # > 0: words get at least their tokens' length of padding
    max_steps: int = 4500  # 6 minutes: a stop for runaway generations
    seed: int | None = None  # random generators of the sampling (None: random)

    def __post_init__(self) -> None:
        for name in (
            "delay_steps",
            "second_stream_ahead",
            "initial_padding",
            "max_padding",
            "final_padding",
            "padding_between",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"max_steps must be an integer >= 1, got {self.max_steps!r}")
        if not isinstance(self.guidance, (int, float)) or not 0 < self.guidance <= MAX_GUIDANCE:
            raise ValueError(f"guidance must be in (0, {MAX_GUIDANCE}], got {self.guidance!r}")
        # temp and seed are checked by the generator's SamplingOptions.


@dataclass(frozen=True)
class TTSConfig:
    """What a TTS model's config.json says beyond the LM: `tts_config` and `model_id`."""

    audio_delay: float  # seconds the audio lags the text
    voice_suffix: str  # voices of this model are `<name><voice_suffix>` in the voice repo
    second_stream_ahead: int = 0  # > 0: the second text stream's lookahead, in words

    @property
    def delay_steps(self) -> int:
        return int(self.audio_delay * FRAME_RATE)  # truncated, as the reference does

    @classmethod
    def parse(cls, config: KyutaiConfig) -> TTSConfig:
        if config.model_type != "tts" and not config.tts_config:
            raise ValueError(f"not a text-to-speech model (model_type {config.model_type!r}, no tts_config)")
        r = ConfigReader(config.tts_config, "config.tts_config")
        if "audio_delay" not in r.data:
            raise ValueError("config.tts_config.audio_delay is missing")
        delay: Any = r.pop("audio_delay")
        if not isinstance(delay, (int, float)) or delay < 0:
            raise ValueError(f"config.tts_config.audio_delay must be a number >= 0, got {delay!r}")
        r.require("multistream", False)  # several audio streams: not implemented
        ahead: Any = r.pop("second_stream_ahead", 0)
        if not isinstance(ahead, int) or isinstance(ahead, bool) or ahead < 0:
            raise ValueError(f"config.tts_config.second_stream_ahead must be an integer >= 0, got {ahead!r}")
        if ahead and not config.lm.demux_second_text_stream:
            raise ValueError("config.tts_config.second_stream_ahead needs a model with demux_second_stream")
        r.warn_unknown()
        return cls(float(delay), voice_suffix(config.model_id), ahead)
