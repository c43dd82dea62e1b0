"""Text-to-speech with Kyutai's delayed-streams TTS models: scripts, voices, CFG, streaming."""

from .loading import load_tts
from .options import TTSConfig, TTSOptions
from .script import Entry, ScriptBuilder
from .state_machine import WordStateMachine
from .streaming import SpeechChunk, SpeechStream
from .text_input import TextInput
from .tts import TTS, TTSResult, WordTiming

__all__ = [
    "TTS",
    "Entry",
    "ScriptBuilder",
    "SpeechChunk",
    "SpeechStream",
    "TTSConfig",
    "TTSOptions",
    "TTSResult",
    "TextInput",
    "WordStateMachine",
    "WordTiming",
    "load_tts",
]
