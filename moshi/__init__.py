"""Moshi in Python: Kyutai's full-duplex speech model (Mimi codec + multistream LM)."""

__version__ = "0.1.0"
