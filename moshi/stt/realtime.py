"""Is live transcription keeping up? The real-time factor (compute over audio), the lag (how
long after a frame's audio ended its text came out, on top of the model's text delay), and
the verdict "too slow" with its reason.

Too slow: the compute per frame, averaged over the last `SLOW_WINDOW_FRAMES` frames, is
above a frame's duration (80 ms), or the lag has passed `MAX_LAG_SECONDS`. Live
transcription then keeps going and drops nothing: the text comes later and later.
"""

from __future__ import annotations

from collections import deque

from ..audio import FRAME_RATE

FRAME_SECONDS = 1 / FRAME_RATE
SLOW_WINDOW_FRAMES = 12  # about 1 s of audio
MAX_LAG_SECONDS = 2.0
SPEEDUPS = "--dtype bfloat16 or --int8 (CPU), or a GPU (--device cuda)"


class RealTimeMeter:
    """Call `frame(compute_seconds, now)` after each frame of live audio is processed; `start`
    is when the audio began (the end of frame i is `start + (i + 1) * 80 ms`)."""

    def __init__(self, start: float):
        self.start = start
        self.frames = 0
        self.compute = 0.0
        self.lag = 0.0  # of the last frame, seconds
        self.max_lag = 0.0
        self._recent: deque[float] = deque(maxlen=SLOW_WINDOW_FRAMES)

    def frame(self, compute_seconds: float, now: float) -> None:
        self.frames += 1
        self.compute += compute_seconds
        self._recent.append(compute_seconds)
        self.lag = max(0.0, now - (self.start + self.frames * FRAME_SECONDS))
        self.max_lag = max(self.max_lag, self.lag)

    @property
    def rtf(self) -> float:
        """Compute seconds over audio seconds (< 1: faster than real time)."""
        return self.compute / max(self.frames * FRAME_SECONDS, 1e-9)

    def too_slow(self) -> str | None:
        """Why the machine cannot keep up, or None while it does."""
        if len(self._recent) == SLOW_WINDOW_FRAMES:
            per_frame = sum(self._recent) / SLOW_WINDOW_FRAMES
            if per_frame > FRAME_SECONDS:
                return f"{per_frame * 1000:.0f} ms of compute per {FRAME_SECONDS * 1000:.0f} ms frame"
        if self.lag > MAX_LAG_SECONDS:
            return f"the text is {self.lag:.1f} s behind the audio"
        return None

    def summary(self) -> str:
        return (
            f"{self.frames * FRAME_SECONDS:.1f} s of audio, real-time factor {self.rtf:.2f} "
            f"(compute over audio), lag {self.lag:.2f} s at the end (max {self.max_lag:.2f} s)"
        )
