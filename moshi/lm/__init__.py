"""Moshi's multistream language model (also Kyutai's speech-to-text family)."""

from .config import KyutaiConfig, LMConfig
from .generator import Generator
from .guidance import Guidance
from .loading import MOSHI_NAME, load_lm
from .model import LMModel, LMOutput
from .sampling import SamplingOptions

__all__ = [
    "MOSHI_NAME",
    "Generator",
    "Guidance",
    "KyutaiConfig",
    "LMConfig",
    "LMModel",
    "LMOutput",
    "SamplingOptions",
    "load_lm",
]
