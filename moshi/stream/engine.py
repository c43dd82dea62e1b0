"""The real-time engine: `max_sessions` conversations batched through one codec and LM step.

Each conversation lives in a slot (a batch item). Per 80 ms tick, `step` takes one frame
of user audio for each slot that has one and returns, for each of those slots, one frame of
Moshi's audio and the text token it spoke:

    user pcm [1920] -> Mimi encode -> codes [8] -> LM step -> tokens [1 + 8] -> Mimi decode -> pcm [1920]

Slots without a frame this tick are paused (the exec masks of the codec and the LM): their
state does not move, so a late client never desynchronises, and never slows the others.
A slot is reset when it is opened, so a new conversation starts from a clean state. The
server, the CLI (`chat`, `infer`) and the tests all drive conversations through `step`.
With an `ear` (moshi/stt/ear.py), a speech-to-text model steps on the same codes first and
writes the user's words into the dialogue model's text.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
import torch

from ..codec import Mimi
from ..lm.generator import Generator
from ..lm.model import LMModel
from ..lm.sampling import SamplingOptions
from ..lm.text import TextTokenizer, Turns
from ..stt.ear import Ear

STEP_TIMES_KEPT = 1000  # recent step durations kept for percentiles


class EngineBusy(RuntimeError):
    """Every slot is taken."""


@dataclass
class SlotStats:
    frames_in: int = 0  # user frames stepped
    frames_out: int = 0  # Moshi frames produced
    dropped_in: int = 0  # user frames dropped because the backlog was full (set by transports)
    dropped_out: int = 0  # Moshi frames dropped because the client did not read them
    compute_ms: float = 0.0  # total time of the steps this slot took part in


@dataclass
class FrameOut:
    """What one slot gets back from one step."""

    pcm: np.ndarray | None  # [frame_size] float32 Moshi audio, None while the delays fill
    text_token: int | None  # Moshi's text token of that frame (None with pcm; padding for `heard`)
    text: str | None  # its displayable piece, None for padding (or without a tokenizer)
    heard: str | None = None  # a piece of the user's words, for models that write them (Turns)


@dataclass
class _Slot:
    open: bool = False
    stepped: int = 0
    stats: SlotStats = field(default_factory=SlotStats)
    turns: Turns | None = None  # whose words the text tokens are (set when opened)


class Engine:
    """Owns the streaming sessions of a codec and an LM over `max_sessions` slots.

    Use as a context manager (or call `start`/`close`). `open_slot` and `close_slot` may be
    called from any thread; `step` runs on one thread at a time (it holds a lock).
    """

    def __init__(
        self,
        mimi: Mimi,
        lm: LMModel,
        tokenizer: TextTokenizer | None = None,
        max_sessions: int = 1,
        options: SamplingOptions | None = None,
        cuda_graphs: bool = True,
        ear: Ear | None = None,
    ):
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        if lm.config.num_user_streams != mimi.num_codebooks or lm.config.dep_q != mimi.num_codebooks:
            raise ValueError(
                f"this engine runs dialogue models: the LM takes {lm.config.num_user_streams} user "
                f"codebooks and makes {lm.config.dep_q}, Mimi gives {mimi.num_codebooks}"
            )
        self.mimi, self.lm, self.tokenizer = mimi, lm, tokenizer
        self.max_sessions = max_sessions
        self.default_options = options or SamplingOptions()
        self.ear = ear
        on_text = ear.write if ear is not None else None
        self.generator = Generator(lm, self.default_options, on_text=on_text, cuda_graphs=cuda_graphs)
        self.device = lm.device
        self.frame_size = mimi.frame_size
        self._slots = [_Slot() for _ in range(max_sessions)]
        self._lock = threading.Lock()
        self._stack: ExitStack | None = None
        self.step_ms: deque[float] = deque(maxlen=STEP_TIMES_KEPT)
        self.steps = 0

    # -- lifetime ------------------------------------------------------------------------------
    def start(self) -> Engine:
        if self._stack is None:
            stack = ExitStack()
            stack.enter_context(self.mimi.streaming(self.max_sessions))
            stack.enter_context(self.generator.streaming(self.max_sessions))
            if self.ear is not None:
                stack.enter_context(self.ear.streaming(self.max_sessions))
            self._stack = stack
        return self

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def warmup(self, steps: int = 4) -> None:
        """Run a few silent steps on every slot (kernels, allocator, CUDA graphs), then reset."""
        silence = np.zeros(self.frame_size, dtype=np.float32)
        with self._lock:
            self._reset_all()
        for _ in range(steps):
            self.step(dict.fromkeys(range(self.max_sessions), silence), _warmup=True)
        with self._lock:
            self._reset_all()
            self._slots = [_Slot() for _ in range(self.max_sessions)]
            self.step_ms.clear()
            self.steps = 0

    # -- slots ---------------------------------------------------------------------------------
    @property
    def free_slots(self) -> int:
        return sum(not s.open for s in self._slots)

    def open_slot(self, options: SamplingOptions | None = None) -> int:
        """Take a free slot for a new conversation (reset, with these sampling options)."""
        with self._lock:
            for i, slot in enumerate(self._slots):
                if not slot.open:
                    self._reset(i)
                    self.generator.set_options(options or self.default_options, item=i)
                    padding = self.lm.config.text_padding_id
                    self._slots[i] = _Slot(open=True, turns=Turns(self.tokenizer, padding))
                    return i
        raise EngineBusy(f"all {self.max_sessions} slots are in use")

    def close_slot(self, slot: int) -> SlotStats:
        with self._lock:
            stats = self._slots[slot].stats
            self._slots[slot] = _Slot()
            return stats

    def stats(self, slot: int) -> SlotStats:
        return self._slots[slot].stats

    def _reset_all(self) -> None:
        self.mimi.reset_streaming()
        self.generator.reset_streaming()
        if self.ear is not None:
            self.ear.reset()

    def _reset(self, slot: int) -> None:
        mask = torch.zeros(self.max_sessions, dtype=torch.bool, device=self.device)
        mask[slot] = True
        self.mimi.reset_streaming(mask)
        self.generator.reset_streaming(mask)
        if self.ear is not None:
            self.ear.reset(mask)

    # -- the step --------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, frames: dict[int, np.ndarray], _warmup: bool = False) -> dict[int, FrameOut]:
        """One tick: `frames` maps open slots to one frame of user pcm ([frame_size] float32,
        24 kHz mono); returns each of those slots' output. Other slots stay paused."""
        with self._lock:
            if self._stack is None:
                raise RuntimeError("the engine is not started: use `with engine:` or engine.start()")
            if not frames:
                return {}
            for slot, pcm in frames.items():
                if not (0 <= slot < self.max_sessions) or not (self._slots[slot].open or _warmup):
                    raise ValueError(f"slot {slot} is not open")
                if pcm.shape != (self.frame_size,):
                    raise ValueError(
                        f"a frame is [{self.frame_size}] samples, got {list(pcm.shape)} for slot {slot}"
                    )
            t0 = time.perf_counter()
            out = self._step(frames)
            ms = 1000 * (time.perf_counter() - t0)
            self.step_ms.append(ms)
            self.steps += 1
            for slot, result in out.items():
                stats = self._slots[slot].stats
                stats.frames_in += 1
                stats.frames_out += result.pcm is not None
                stats.compute_ms += ms
            return out

    def _step(self, frames: dict[int, np.ndarray]) -> dict[int, FrameOut]:
        B = self.max_sessions
        active = torch.zeros(B, dtype=torch.bool)
        pcm = np.zeros((B, 1, self.frame_size), dtype=np.float32)
        for slot, frame in frames.items():
            active[slot] = True
            pcm[slot, 0] = frame
        mask = None if bool(active.all()) else active.to(self.device)
        self.mimi.set_exec_mask(mask)
        codes = self.mimi.encode(torch.from_numpy(pcm).to(self.device))  # [B, 8, 1]
        # First-frame rule (as Kyutai's server): the LM ignores a conversation's first frame,
        # so after encoding it the codec restarts, and frame 2 is encoded as a stream start.
        first = [slot for slot in frames if self._slots[slot].stepped == 0]
        if first:
            reset = torch.zeros(B, dtype=torch.bool, device=self.device)
            reset[first] = True
            self.mimi.reset_streaming(reset)
        for slot in frames:
            self._slots[slot].stepped += 1

        if self.ear is not None:
            self.ear.listen(codes, mask)
        self.generator.set_exec_mask(mask)
        tokens = self.generator.step(codes)  # [B, 9, 1] or None
        results = {slot: FrameOut(None, None, None) for slot in frames}
        if tokens is None:
            return results
        tokens_cpu = tokens[:, :, 0].cpu()
        ready = active & (tokens_cpu[:, 0] >= 0)
        if not bool(ready.any()):
            return results
        self.mimi.set_exec_mask(None if bool(ready.all()) else ready.to(self.device))
        audio = self.mimi.decode(tokens[:, 1:].clamp(min=0)).cpu().numpy()  # [B, 1, frame_size]
        self.mimi.set_exec_mask(None)
        for slot in frames:
            if ready[slot]:
                token, heard = int(tokens_cpu[slot, 0]), None
                turns = self._slots[slot].turns
                if turns is not None:
                    token, user_token = turns.split(token)
                    if user_token is not None and self.tokenizer is not None:
                        heard = self.tokenizer.piece(user_token)
                text = self.tokenizer.piece(token) if self.tokenizer is not None else None
                results[slot] = FrameOut(audio[slot, 0].copy(), token, text, heard)
        return results

    # -- numbers -------------------------------------------------------------------------------
    def step_percentiles(self) -> dict[str, float]:
        if not self.step_ms:
            return {}
        values = np.array(self.step_ms)
        return {f"p{q}": round(float(np.percentile(values, q)), 2) for q in (50, 90, 99)}
