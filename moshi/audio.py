"""Audio and time constants, named once.

Mimi works on 24 kHz mono audio, cut into 80 ms frames. Everything else (the LM's step
rate, the server's tick, the CLI's padding) is derived from these three numbers.
"""

from __future__ import annotations


def exact_div(a: float, b: float) -> int:
    """`a / b` as an int, asserting that it divides exactly (so a typo cannot round)."""
    q, r = divmod(a, b)
    if r != 0:
        raise ValueError(f"{a} is not a multiple of {b}")
    return int(q)


SAMPLE_RATE = 24_000  # Hz, mono
FRAME_RATE = 12.5  # codec frames (and LM steps) per second
FRAME_SIZE = exact_div(SAMPLE_RATE, FRAME_RATE)  # 1920 samples = 80 ms
FRAME_MS = exact_div(1000, FRAME_RATE)  # 80
