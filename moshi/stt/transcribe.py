"""Speech-to-text on whole recordings with Kyutai's STT models (dep_q = 0, 32 codebooks in).

A batch of inputs runs as one stream per input: each gets `prefix` seconds of silence
before it (the model was trained to start listening in silence) and `delay` seconds plus
a little after it (the text lags the audio by `delay`, so the last word needs that much
more audio to come out). Shorter inputs are padded with silence to the longest; the models
are causal, so the padding changes nothing before it and each input's tokens are cut at its
own end. Decoding is greedy, as in Kyutai's scripts. Live transcription (`LiveTranscriber`)
does the same frame by frame: `chunk_frames=1` here gives exactly its result.

    files = ModelFiles.resolve("kyutai/stt-1b-en_fr")
    lm, mimi, tokenizer = files.load_lm(), files.load_mimi(), files.load_tokenizer()
    t = transcribe(lm, mimi, pcm, tokenizer, files.config.stt_config, vad=True)  # pcm [T] at 24 kHz
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..audio import FRAME_RATE, FRAME_SIZE, SAMPLE_RATE
from ..codec import Mimi
from ..lm.model import LMModel
from ..lm.text import TextTokenizer
from .steps import SttSteps, SttTiming, TurnDetector
from .transcript import Transcript, timed_words

ENCODE_CHUNK_FRAMES = 16  # at most this many frames per Mimi call (memory stays flat)

Audio = np.ndarray | torch.Tensor
Timing = SttTiming | Mapping[str, Any] | None


def transcribe(
    lm: LMModel,
    mimi: Mimi,
    pcm: Audio,
    tokenizer: TextTokenizer,
    timing: Timing = None,
    vad: bool = False,
    chunk_frames: int = ENCODE_CHUNK_FRAMES,
) -> Transcript:
    """pcm: [T] mono float audio at 24 kHz -> its words with times (seconds of the input),
    and with `vad=True` the times where the speaker finished a turn.

    timing: the model's `stt_config` dict (`ModelFiles.config.stt_config`), an `SttTiming`,
        or None for Kyutai's defaults (1 s of silence before, a 5 s text delay).
    chunk_frames: frames per Mimi call (capped by its context); 1 is what live transcription
        does (Mimi's attention ring makes other sizes round differently once it is full)."""
    return transcribe_batch(lm, mimi, [pcm], tokenizer, timing, vad, chunk_frames=chunk_frames)[0]


def transcribe_batch(
    lm: LMModel,
    mimi: Mimi,
    pcms: Sequence[Audio],
    tokenizer: TextTokenizer,
    timing: Timing = None,
    vad: bool = False,
    on_steps: Callable[[int], None] | None = None,
    chunk_frames: int = ENCODE_CHUNK_FRAMES,
) -> list[Transcript]:
    """Several inputs ([T_i] each, any lengths) as one batch -> one transcript each, the
    same as each would get alone. `on_steps(n)` reports progress (n more steps done)."""
    steps = SttSteps(lm, mimi, vad)
    if not pcms:
        raise ValueError("expected at least one input")
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
    arrays = [mono(p) for p in pcms]
    timing = SttTiming.of(timing)
    tokens, probs = _run(steps, arrays, timing, min(chunk_frames, steps.max_chunk_frames), on_steps)
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
        turns = None
        if vad:
            detector = TurnDetector(lm, timing)
            steps_b = zip(tokens[b, :n].tolist(), probs[b, :n].tolist(), strict=True)
            turns = [e for t, p in steps_b if (e := detector.push(t, p, duration)) is not None]
        out.append(Transcript(words, turns))
    return out


def mono(pcm: Audio) -> np.ndarray:
    """[T] float32 numpy, from numpy or torch."""
    if isinstance(pcm, torch.Tensor):
        pcm = pcm.detach().float().cpu().numpy()
    if pcm.ndim != 1:
        raise ValueError(f"expected mono audio of shape [T], got shape {list(pcm.shape)}")
    return np.asarray(pcm, dtype=np.float32)


def _run(
    steps: SttSteps,
    pcms: list[np.ndarray],
    timing: SttTiming,
    chunk_frames: int,
    on_steps: Callable[[int], None] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """-> text tokens [B, S] and end-of-turn probabilities [B, S] (zeros without vad)."""
    B = len(pcms)
    total = max(timing.steps(len(p)) for p in pcms)
    tokens: list[torch.Tensor] = []  # [B, n] per chunk, kept on the device until the end
    probs: list[torch.Tensor] = []
    with steps.streaming(B):
        for start in range(0, total, chunk_frames):
            n = min(chunk_frames, total - start)
            chunk = np.stack([_window(p, timing.prefix_frames, start, n) for p in pcms])
            got, p = steps.run(torch.from_numpy(chunk))
            tokens.append(got)
            if p is not None:
                probs.append(p)
            if on_steps is not None:
                on_steps(n)
    token_array = torch.cat(tokens, dim=1).cpu().numpy()
    prob_array = torch.cat(probs, dim=1).cpu().numpy() if probs else np.zeros((B, total))
    return token_array, prob_array


def _window(pcm: np.ndarray, prefix_frames: int, start: int, n: int) -> np.ndarray:
    """Frames [start, start + n) of `prefix silence + pcm + silence`, as [n * FRAME_SIZE]."""
    out = np.zeros(n * FRAME_SIZE, dtype=np.float32)
    lo = (start - prefix_frames) * FRAME_SIZE  # where the window starts, in pcm samples
    a, b = max(lo, 0), min(lo + len(out), len(pcm))
    if a < b:
        out[a - lo : b - lo] = pcm[a:b]
    return out
