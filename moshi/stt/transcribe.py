"""Speech-to-text on whole recordings with Kyutai's STT models (dep_q = 0, 32 codebooks in).

A batch of inputs runs as one stream per input: each gets `prefix` seconds of silence
before it (the model was trained to start listening in silence) and `delay` seconds plus
a little after it (the text lags the audio by `delay`, so the last word needs that much
more audio to come out). Shorter inputs are padded with silence to the longest; the models
are causal, so the padding changes nothing before it and each input's tokens are cut at its
own end. Decoding is greedy, as in Kyutai's scripts.

Voice activity: the 1B model has 4 extra heads of 6 values; Kyutai's scripts read head 2,
value 0 as the probability that the speaker has finished their turn (> 0.5: end of turn).

    files = ModelFiles.resolve("kyutai/stt-1b-en_fr")
    lm, mimi, tokenizer = files.load_lm(), files.load_mimi(), files.load_tokenizer()
    t = transcribe(lm, mimi, pcm, tokenizer, files.config.stt_config, vad=True)  # pcm [T] at 24 kHz
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..audio import FRAME_RATE, FRAME_SIZE, SAMPLE_RATE
from ..codec import Mimi
from ..lm.generator import Generator
from ..lm.model import LMModel
from ..lm.text import TextTokenizer
from .transcript import Transcript, timed_words

FLUSH_EXTRA_SECONDS = 0.5  # audio after `delay`, so that the last word surely arrives
ENCODE_CHUNK_FRAMES = 16  # at most this many frames per Mimi call (memory stays flat)
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


Audio = np.ndarray | torch.Tensor
Timing = SttTiming | Mapping[str, Any] | None


def transcribe(
    lm: LMModel, mimi: Mimi, pcm: Audio, tokenizer: TextTokenizer, timing: Timing = None, vad: bool = False
) -> Transcript:
    """pcm: [T] mono float audio at 24 kHz -> its words with times (seconds of the input),
    and with `vad=True` the times where the speaker finished a turn.

    timing: the model's `stt_config` dict (`ModelFiles.config.stt_config`), an `SttTiming`,
        or None for Kyutai's defaults (1 s of silence before, a 5 s text delay)."""
    return transcribe_batch(lm, mimi, [pcm], tokenizer, timing, vad)[0]


def transcribe_batch(
    lm: LMModel,
    mimi: Mimi,
    pcms: Sequence[Audio],
    tokenizer: TextTokenizer,
    timing: Timing = None,
    vad: bool = False,
    on_steps: Callable[[int], None] | None = None,
) -> list[Transcript]:
    """Several inputs ([T_i] each, any lengths) as one batch -> one transcript each, the
    same as each would get alone. `on_steps(n)` reports progress (n more steps done)."""
    if lm.config.dep_q != 0:
        raise ValueError(f"expected a speech-to-text model (dep_q = 0), got dep_q = {lm.config.dep_q}")
    if mimi.num_codebooks != lm.config.n_q:
        raise ValueError(f"the model reads {lm.config.n_q} codebooks, Mimi makes {mimi.num_codebooks}")
    if vad and not has_vad(lm):
        raise ValueError("vad=True: this model has no voice-activity head (kyutai/stt-1b-en_fr has one)")
    if not pcms:
        raise ValueError("expected at least one input")
    arrays = [_mono(p) for p in pcms]
    if not isinstance(timing, SttTiming):
        timing = SttTiming.from_config(timing or {})
    tokens, probs = _run(mimi, lm, arrays, timing, vad, on_steps)  # [B, S], [B, S]
    out = []
    for b, pcm in enumerate(arrays):
        n = timing.steps(len(pcm))
        duration = len(pcm) / SAMPLE_RATE
        words = timed_words(
            tokens[b, :n].tolist(),
            tokenizer,
            frame_rate=FRAME_RATE,
            shift=timing.shift,
            duration=duration,
            end_of_padding_id=lm.config.text_end_padding_id,
        )
        turns = _end_of_turns(tokens[b, :n], probs[b, :n], timing, duration, lm) if vad else None
        out.append(Transcript(words, turns))
    return out


def _mono(pcm: Audio) -> np.ndarray:
    """[T] float32 numpy, from numpy or torch."""
    if isinstance(pcm, torch.Tensor):
        pcm = pcm.detach().float().cpu().numpy()
    if pcm.ndim != 1:
        raise ValueError(f"expected mono audio of shape [T], got shape {list(pcm.shape)}")
    return np.asarray(pcm, dtype=np.float32)


@torch.no_grad()
def _run(
    mimi: Mimi,
    lm: LMModel,
    pcms: list[np.ndarray],
    timing: SttTiming,
    vad: bool,
    on_steps: Callable[[int], None] | None,
) -> tuple[np.ndarray, np.ndarray]:
    B = len(pcms)
    total = max(timing.steps(len(p)) for p in pcms)
    gen = Generator(lm, temp=0.0, temp_text=0.0)
    tokens: list[torch.Tensor] = []  # [B] per step, kept on the device until the end
    probs: list[torch.Tensor] = []
    # A streaming chunk must fit in the codec transformers' context (at the 25 Hz rate).
    chunk_frames = max(1, min(ENCODE_CHUNK_FRAMES, mimi.config.context // mimi.config.downsample_stride))
    with mimi.streaming(B), gen.streaming(B):
        for start in range(0, total, chunk_frames):
            n = min(chunk_frames, total - start)
            chunk = np.stack([_window(p, timing.prefix_frames, start, n) for p in pcms])[:, None]
            codes = mimi.encode(torch.from_numpy(chunk).to(lm.device))  # [B, 32, n]
            for i in range(n):
                out, heads = gen.step_with_extra_heads(codes[:, :, i : i + 1])
                assert out is not None  # no delays in STT models: a token at every step
                tokens.append(out[:, 0, 0])
                if vad:
                    probs.append(heads[VAD_HEAD][:, 0, VAD_INDEX])
            if on_steps is not None:
                on_steps(n)
    token_array = torch.stack(tokens, dim=1).cpu().numpy()
    prob_array = torch.stack(probs, dim=1).float().cpu().numpy() if vad else np.zeros((B, total))
    return token_array, prob_array


def _window(pcm: np.ndarray, prefix_frames: int, start: int, n: int) -> np.ndarray:
    """Frames [start, start + n) of `prefix silence + pcm + silence`, as [n * FRAME_SIZE]."""
    out = np.zeros(n * FRAME_SIZE, dtype=np.float32)
    lo = (start - prefix_frames) * FRAME_SIZE  # where the window starts, in pcm samples
    a, b = max(lo, 0), min(lo + len(out), len(pcm))
    if a < b:
        out[a - lo : b - lo] = pcm[a:b]
    return out


def _end_of_turns(
    tokens: np.ndarray, probs: np.ndarray, timing: SttTiming, duration: float, lm: LMModel
) -> list[float]:
    """Times (seconds of the input) where the model first judged, after a word, that the
    speaker had finished: the end of the audio it had heard at that step."""
    hidden = {lm.config.text_end_padding_id, lm.config.text_padding_id}
    times, spoke = [], False
    for t, (token, p) in enumerate(zip(tokens.tolist(), probs.tolist(), strict=True)):
        spoke = spoke or token not in hidden
        if spoke and p > VAD_THRESHOLD:
            seconds = (t + 1) / FRAME_RATE - timing.prefix_frames / FRAME_RATE
            times.append(min(max(round(seconds, 3), 0.0), duration))
            spoke = False
    return times
