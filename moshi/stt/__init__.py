"""Speech-to-text as a library: words with times and end-of-turn times from Kyutai's STT
models, and their txt / json / srt / vtt forms."""

from .transcribe import SttTiming, has_vad, transcribe, transcribe_batch
from .transcript import FORMATS, MIN_CUE_SECONDS, Transcript, Word, cues, render, timed_words

__all__ = [
    "FORMATS",
    "MIN_CUE_SECONDS",
    "SttTiming",
    "Transcript",
    "Word",
    "cues",
    "has_vad",
    "render",
    "timed_words",
    "transcribe",
    "transcribe_batch",
]
