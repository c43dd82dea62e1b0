"""Moshi's multistream language model (also Kyutai's speech-to-text family)."""

from .config import KyutaiConfig, LMConfig
from .generator import Generator
from .loading import MOSHI_NAME, load_lm
from .model import LMModel, LMOutput

__all__ = ["MOSHI_NAME", "Generator", "KyutaiConfig", "LMConfig", "LMModel", "LMOutput", "load_lm"]
