"""A TTS over a tiny fixture model, set as the reference fixtures were made."""

from moshi.tts import TTS
from tests.support.fixtures import TOKENIZER, fixture_meta


def make_tts(lm, **options):
    """A TTS over a tiny fixture model, with the fixtures' settings (greedy by default)."""
    meta = fixture_meta("tts_lm_tiny")
    settings = dict(
        delay_steps=meta["delay_steps"],
        temp=0.0,
        initial_padding=meta["initial_padding"],
        max_padding=meta["max_padding"],
        final_padding=meta["final_padding"],
        padding_between=meta["padding_between"],
        voice_suffix=".tiny0000@1.safetensors",
    )
    return TTS(lm, TOKENIZER, **(settings | options))
