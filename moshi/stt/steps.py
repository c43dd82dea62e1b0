"""What offline and live speech-to-text share: the model's timing (`SttTiming`), the check
that a model is a speech-to-text one, the per-frame work (`SttSteps`: Mimi encode, then one
greedy LM step per frame) and the end-of-turn detector (`TurnDetector`).

Voice activity: the 1B model has 4 extra heads of 6 values; Kyutai's scripts read head 2,
value 0 as the probability that the speaker has finished their turn (> 0.5: end of turn).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from ..audio import FRAME_RATE, FRAME_SIZE
from ..codec import Mimi
from ..lm.generator import Generator
from ..lm.model import LMModel

FLUSH_EXTRA_SECONDS = 0.5  # audio after `delay`, so that the last word surely arrives
VAD_HEAD, VAD_INDEX, VAD_THRESHOLD = 2, 0, 0.5  # extra_heads[2][..., 0] > 0.5: end of turn
# Kyutai's script defaults, for an STT model whose config has no stt_config.
DEFAULT_PREFIX_SECONDS, DEFAULT_DELAY_SECONDS = 1.0, 5.0


@dataclass(frozen=True)
class SttTiming:
    prefix_frames: int  # silence before each input
    delay_seconds: float  # how far the text lags the audio
    flush_frames: int  # silence after each input

    @classmethod
    def from_config(cls, stt_config: Mapping[str, Any]) -> SttTiming:
        """From a Kyutai `stt_config` (missing keys: the defaults of Kyutai's scripts)."""
        prefix = float(stt_config.get("audio_silence_prefix_seconds", DEFAULT_PREFIX_SECONDS))
        delay = float(stt_config.get("audio_delay_seconds", DEFAULT_DELAY_SECONDS))
        if prefix < 0 or delay < 0:
            raise ValueError(f"stt_config: negative prefix ({prefix}) or delay ({delay})")
        return cls(
            prefix_frames=math.ceil(prefix * FRAME_RATE),
            delay_seconds=delay,
            flush_frames=math.ceil((delay + FLUSH_EXTRA_SECONDS) * FRAME_RATE),
        )

    @classmethod
    def of(cls, timing: SttTiming | Mapping[str, Any] | None) -> SttTiming:
        """An `SttTiming`, a Kyutai `stt_config` dict, or None (Kyutai's defaults)."""
        return timing if isinstance(timing, SttTiming) else cls.from_config(timing or {})

    @property
    def shift(self) -> float:
        """Seconds between a step's time and the time in the input its text token is about."""
        return self.prefix_frames / FRAME_RATE + self.delay_seconds

    def steps(self, samples: int) -> int:
        return self.prefix_frames + max(1, math.ceil(samples / FRAME_SIZE)) + self.flush_frames


def has_vad(lm: LMModel) -> bool:
    """Whether the model has the voice-activity head that `vad=True` reads."""
    cfg = lm.config
    return cfg.extra_heads_num_heads > VAD_HEAD and cfg.extra_heads_dim > VAD_INDEX


def check_model(lm: LMModel, mimi: Mimi, vad: bool) -> None:
    """ValueError unless `lm` is a speech-to-text model that reads what `mimi` makes."""
    if lm.config.dep_q != 0:
        raise ValueError(f"expected a speech-to-text model (dep_q = 0), got dep_q = {lm.config.dep_q}")
    if mimi.num_codebooks != lm.config.n_q:
        raise ValueError(f"the model reads {lm.config.n_q} codebooks, Mimi makes {mimi.num_codebooks}")
    if vad and not has_vad(lm):
        raise ValueError("vad=True: this model has no voice-activity head (kyutai/stt-1b-en_fr has one)")


class SttSteps:
    """Frames of audio in, one text token per frame out (greedy), for B streams at once.
    Use inside `with steps.streaming(B):`."""

    def __init__(self, lm: LMModel, mimi: Mimi, vad: bool):
        check_model(lm, mimi, vad)
        self.lm, self.mimi, self.vad = lm, mimi, vad
        self.gen = Generator(lm, temp=0.0, temp_text=0.0)
        # A Mimi call must fit in the codec transformers' context (at the 25 Hz rate).
        self.max_chunk_frames = max(1, mimi.config.context // mimi.config.downsample_stride)

    @contextmanager
    def streaming(self, batch_size: int) -> Iterator[None]:
        with self.mimi.streaming(batch_size), self.gen.streaming(batch_size):
            yield

    @torch.no_grad()
    def run(self, pcm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """pcm [B, n * FRAME_SIZE] (at most `max_chunk_frames` frames, one Mimi call) ->
        (text tokens [B, n], end-of-turn probabilities [B, n] or None without vad), on the
        model's device."""
        samples = pcm.shape[-1]
        n = samples // FRAME_SIZE
        if pcm.ndim != 2 or samples != n * FRAME_SIZE or not 1 <= n <= self.max_chunk_frames:
            raise ValueError(
                f"expected [B, n * {FRAME_SIZE}] with n in 1..{self.max_chunk_frames}, got {list(pcm.shape)}"
            )
        codes = self.mimi.encode(pcm[:, None].to(self.lm.device))  # [B, 32, n]
        tokens, probs = [], []
        for i in range(n):
            out, heads = self.gen.step_with_extra_heads(codes[:, :, i : i + 1])
            assert out is not None  # no delays in STT models: a token at every step
            tokens.append(out[:, 0, 0])
            if self.vad:
                probs.append(heads[VAD_HEAD][:, 0, VAD_INDEX].float())
        return torch.stack(tokens, 1), torch.stack(probs, 1) if self.vad else None


class TurnDetector:
    """Step by step: the times (seconds of the input) where the model first judged, after a
    word, that the speaker had finished: the end of the audio it had heard at that step."""

    def __init__(self, lm: LMModel, timing: SttTiming):
        self.hidden = {lm.config.text_end_padding_id, lm.config.text_padding_id}
        self.prefix_frames = timing.prefix_frames
        self.steps = 0
        self._spoke = False

    def push(self, token: int, prob: float, duration: float) -> float | None:
        """This step's text token and end-of-turn probability -> an end of turn, or None."""
        t, self.steps = self.steps, self.steps + 1
        self._spoke = self._spoke or token not in self.hidden
        if not (self._spoke and prob > VAD_THRESHOLD):
            return None
        self._spoke = False
        seconds = (t + 1) / FRAME_RATE - self.prefix_frames / FRAME_RATE
        return min(max(round(seconds, 3), 0.0), duration)
