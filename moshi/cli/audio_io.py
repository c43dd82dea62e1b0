"""Where `chat` gets the user's voice and puts Moshi's: the sound card, or files (a test seam).

Both give the user's audio as 80 ms frames of 24 kHz mono (`read`, blocking; None once the
input has ended) and take Moshi's audio as 24 kHz pcm of any length (`write`).

The sound card runs through `sounddevice` (PortAudio) callbacks on its own thread. The
input side cuts what the microphone gives into frames and keeps at most `MAX_BACKLOG`
of them: when the model falls behind, the oldest are dropped (counted as `dropped`) so that
the conversation never lags further. The output side plays what was written, after a
`PREBUFFER_FRAMES` cushion; when it runs dry, it plays silence (counted as `underruns`) and
rebuilds the cushion. Devices that cannot run at 24 kHz run at their own rate, with
streaming resamplers (libsoxr) in between.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from ..audio import FRAME_MS, FRAME_SIZE, SAMPLE_RATE, write_wav
from .common import UserError

MAX_BACKLOG = 4  # input frames waiting for the model, at most (320 ms)
PREBUFFER_FRAMES = 1  # Moshi's frames buffered before playback starts (80 ms)
READ_POLL_SECONDS = 0.1  # a blocked `read` wakes this often (so Ctrl-C gets through)
DEVICE_SILENCE_SECONDS = 2.0  # no microphone data this long: the device is gone
DEVICE_START_SECONDS = 10.0  # the same before its first data (an input alone can take seconds)


class AudioIO(Protocol):
    realtime: bool  # True: `read` returns frames at the pace of a clock

    def start(self) -> None: ...
    def read(self) -> np.ndarray | None: ...
    def write(self, pcm: np.ndarray) -> None: ...
    def counters(self) -> tuple[int, int]: ...  # (output underruns, dropped input frames)
    def close(self) -> None: ...  # stop the audio
    def finish(self) -> None: ...  # after a conversation that went well: write what is to write


class FileAudio:
    """Replaces the sound card: the input file is the microphone (then `tail_frames` of
    silence), and what Moshi says goes to the output file on `finish`. With `realtime`, frames
    come at the pace of a real microphone (needed to talk to a server)."""

    def __init__(
        self, pcm: np.ndarray, output: Path | None = None, realtime: bool = False, tail_frames: int = 0
    ):
        n = -(-len(pcm) // FRAME_SIZE) + tail_frames
        self.frames = np.zeros(n * FRAME_SIZE, dtype=np.float32)
        self.frames[: len(pcm)] = pcm
        self.output, self.realtime = output, realtime
        self.written: list[np.ndarray] = []
        self._next = 0
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()

    def read(self) -> np.ndarray | None:
        i = self._next
        if i * FRAME_SIZE >= len(self.frames):
            return None
        if self.realtime:
            time.sleep(max(0.0, self._t0 + i * FRAME_MS / 1000 - time.monotonic()))
        self._next += 1
        return self.frames[i * FRAME_SIZE : (i + 1) * FRAME_SIZE]

    def write(self, pcm: np.ndarray) -> None:
        self.written.append(np.asarray(pcm, dtype=np.float32))

    def counters(self) -> tuple[int, int]:
        return 0, 0

    def close(self) -> None:
        pass

    def finish(self) -> None:
        pcm = np.concatenate(self.written) if self.written else np.zeros(0, dtype=np.float32)
        if self.output is not None:
            write_wav(self.output, pcm)


class SampleFifo:
    """A thread-safe queue of samples: push arrays, pop any count."""

    def __init__(self) -> None:
        self._chunks: deque[np.ndarray] = deque()
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    def push(self, x: np.ndarray) -> None:
        if len(x):
            with self._lock:
                self._chunks.append(np.asarray(x, dtype=np.float32))
                self._size += len(x)

    def pop(self, n: int) -> np.ndarray:
        """Up to n samples (fewer if fewer are queued)."""
        out = []
        with self._lock:
            while n > 0 and self._chunks:
                head = self._chunks[0]
                take = head[:n]
                out.append(take)
                if len(take) == len(head):
                    self._chunks.popleft()
                else:
                    self._chunks[0] = head[n:]
                n -= len(take)
                self._size -= len(take)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


CHAT_FILES = "--input-file IN --output-file OUT.wav"  # what `chat` offers without a sound card


def import_sounddevice(instead: str = CHAT_FILES) -> ModuleType:
    """The sounddevice module, or a `UserError` that says how to get it, or to use `instead`."""
    try:
        import sounddevice
    except ImportError as e:
        raise UserError(
            f"the sound card needs the sounddevice package: pip install 'moshi-rt[audio]' (or use {instead})"
        ) from e
    except OSError as e:  # sounddevice found no PortAudio library
        raise UserError(
            f"the sound card needs the PortAudio library ({e}): install it (Debian/Ubuntu: "
            f"apt install libportaudio2; macOS: brew install portaudio), or use {instead}"
        ) from e
    return sounddevice


def no_sound_card(instead: str = CHAT_FILES) -> str:
    return f"no sound card found (PortAudio sees no audio device): use {instead}"


def list_devices() -> str:
    """The sound cards PortAudio sees, one per line, or a line saying there is none."""
    devices = import_sounddevice().query_devices()
    return str(devices) if len(devices) else no_sound_card()


def device_arg(value: str) -> int | str:
    """A `--input-device`/`--output-device` value: an index, or a name."""
    return int(value) if value.isdigit() else value


class SoundCard:
    """The microphone and speakers, through sounddevice; `listen=False` or `play=False` opens
    only the other one. `max_backlog`: microphone frames kept waiting for the model (None:
    all, nothing is dropped). `instead`: what to use without a sound card (in errors)."""

    realtime = True

    def __init__(
        self,
        input_device: str | int | None = None,
        output_device: str | int | None = None,
        *,
        listen: bool = True,
        play: bool = True,
        max_backlog: int | None = MAX_BACKLOG,
        instead: str = CHAT_FILES,
    ):
        self.sd = import_sounddevice(instead)
        if not len(self.sd.query_devices()):
            raise UserError(no_sound_card(instead))
        self._in_rate = self._rate(input_device, "input") if listen else SAMPLE_RATE
        self._out_rate = self._rate(output_device, "output") if play else SAMPLE_RATE
        self._max_backlog = max_backlog
        self._in_resampler = _Resampler(self._in_rate, SAMPLE_RATE)
        self._out_resampler = _Resampler(SAMPLE_RATE, self._out_rate)
        self._mic = SampleFifo()  # 24 kHz, less than a frame
        self._frames: deque[np.ndarray] = deque()
        self._ready = threading.Condition()
        self._speaker = SampleFifo()  # at the output device's rate
        self._playing = self._draining = False
        self._closed = self._heard = False
        self.underruns = self.dropped = 0
        self._streams: list[Any] = []
        try:
            if listen:
                self._streams.append(self.sd.InputStream(
                    device=input_device, samplerate=self._in_rate, channels=1, dtype="float32",
                    callback=self._on_input,
                ))  # fmt: skip
            if play:
                self._streams.append(self.sd.OutputStream(
                    device=output_device, samplerate=self._out_rate, channels=1, dtype="float32",
                    callback=self._on_output,
                ))  # fmt: skip
        except Exception as e:  # PortAudioError, ValueError for unknown devices
            raise UserError(f"cannot open the sound card: {e} (see --list-devices)") from e

    def _rate(self, device: str | int | None, kind: str) -> int:
        check = self.sd.check_input_settings if kind == "input" else self.sd.check_output_settings
        try:
            check(device=device, samplerate=SAMPLE_RATE, channels=1, dtype="float32")
            return SAMPLE_RATE
        except Exception:
            try:
                return int(self.sd.query_devices(device, kind)["default_samplerate"])
            except Exception as e:
                raise UserError(f"no usable {kind} device {device!r}: {e} (see --list-devices)") from e

    def start(self) -> None:
        for s in self._streams:
            s.start()

    # PortAudio's thread ---------------------------------------------------------------------
    def _on_input(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        self._mic.push(self._in_resampler(indata[:, 0]))
        with self._ready:
            while len(self._mic) >= FRAME_SIZE:
                self._frames.append(self._mic.pop(FRAME_SIZE))
                if self._max_backlog is not None and len(self._frames) > self._max_backlog:
                    self._frames.popleft()
                    self.dropped += 1
            self._ready.notify()

    def _on_output(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if not self._playing and (self._draining or len(self._speaker) >= PREBUFFER_FRAMES * self._out_frame):
            self._playing = bool(len(self._speaker))
        pcm = self._speaker.pop(frames) if self._playing else np.zeros(0, dtype=np.float32)
        if self._playing and len(pcm) < frames:
            self.underruns += not self._draining  # (the end of the speech is no underrun)
            self._playing = False
        outdata[: len(pcm), 0] = pcm
        outdata[len(pcm) :, 0] = 0.0

    @property
    def _out_frame(self) -> int:
        return round(FRAME_SIZE * self._out_rate / SAMPLE_RATE)

    # the model's thread ---------------------------------------------------------------------
    def read(self) -> np.ndarray | None:
        """The next 80 ms of microphone [FRAME_SIZE], None once closed. Raises `UserError`
        when the device stops delivering (unplugged, or its sound server stopped)."""
        since = time.monotonic()
        patience = DEVICE_SILENCE_SECONDS if self._heard else DEVICE_START_SECONDS
        with self._ready:
            while not self._frames:
                if self._closed:
                    return None
                waited = time.monotonic() - since
                if waited >= patience or not all(s.active for s in self._streams):
                    raise UserError(
                        f"the sound card stopped: no audio from the microphone for {waited:.1f} s "
                        "(unplugged, or its sound server stopped)"
                    )
                self._ready.wait(READ_POLL_SECONDS)
            self._heard = True
            return self._frames.popleft()

    def write(self, pcm: np.ndarray) -> None:
        self._speaker.push(self._out_resampler(pcm))

    def counters(self) -> tuple[int, int]:
        return self.underruns, self.dropped

    def drain(self) -> None:
        """Wait until what was written has been played (the speakers only)."""
        self._draining = True
        while len(self._speaker) and all(s.active for s in self._streams):
            time.sleep(READ_POLL_SECONDS / 4)
        time.sleep(self._streams[-1].latency if self._streams else 0.0)  # the device's own buffer

    def close(self) -> None:
        with self._ready:
            if self._closed:
                return
            self._closed = True
            self._ready.notify_all()
        for s in self._streams:
            try:
                s.stop()
                s.close()
            except Exception:  # a device that went away cannot be stopped cleanly
                pass

    def finish(self) -> None:
        pass


class _Resampler:
    """Streaming resampling between two rates (identity when they are equal)."""

    def __init__(self, from_rate: int, to_rate: int):
        self._stream = None
        if from_rate != to_rate:
            import soxr

            self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32")

    def __call__(self, pcm: np.ndarray) -> np.ndarray:
        pcm = np.ascontiguousarray(pcm, dtype=np.float32)
        return pcm if self._stream is None else self._stream.resample_chunk(pcm)
