"""Speech-to-text as a library: words with times and end-of-turn times from Kyutai's STT
models, on whole recordings (`transcribe`) or live, frame by frame (`LiveTranscriber`), and
their txt / json / srt / vtt forms."""

from .live import Heard, LiveTranscriber
from .realtime import RealTimeMeter
from .steps import SttTiming, has_vad
from .transcribe import transcribe, transcribe_batch
from .transcript import FORMATS, MIN_CUE_SECONDS, Transcript, Word, WordAssembler, cues, render, timed_words

__all__ = [
    "FORMATS",
    "MIN_CUE_SECONDS",
    "Heard",
    "LiveTranscriber",
    "RealTimeMeter",
    "SttTiming",
    "Transcript",
    "Word",
    "WordAssembler",
    "cues",
    "has_vad",
    "render",
    "timed_words",
    "transcribe",
    "transcribe_batch",
]
