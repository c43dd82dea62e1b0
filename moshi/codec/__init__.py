"""Mimi, Kyutai's streaming speech codec: 24 kHz audio <-> RVQ codes at 12.5 Hz."""

from .config import MimiConfig
from .loading import MIMI_CONFIG, MIMI_NAME, MIMI_WEIGHTS, load_mimi, save_mimi
from .model import Mimi

__all__ = ["MIMI_CONFIG", "MIMI_NAME", "MIMI_WEIGHTS", "Mimi", "MimiConfig", "load_mimi", "save_mimi"]
