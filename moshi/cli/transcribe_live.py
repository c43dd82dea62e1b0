"""`moshi transcribe --live [FILE]`: the microphone (or a file played in real time) through
`moshi.stt.LiveTranscriber`, the text printed as the model writes it, the real-time factor
and lag at the end, and one line when the machine cannot keep up (nothing is dropped)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..stt import Heard, LiveTranscriber, RealTimeMeter, render
from ..stt.realtime import FRAME_SECONDS, SPEEDUPS
from .audio_io import AudioIO, FileAudio, SoundCard
from .chat_output import Printer
from .common import UserError
from .files import check_outputs, read_inputs
from .loading import load_stt

MICROPHONE = "-"  # `--live` without a file


def run_live(args: argparse.Namespace) -> int:
    output = Path(args.output) if args.output else None
    if output is not None:
        check_outputs([output], args.force)
    pcm = None if args.live == MICROPHONE else read_inputs([args.live])[0].pcm
    model, timing = load_stt(args)
    # The text goes to stdout, unless stdout is for a transcript in another format.
    printer = Printer(out=sys.stderr if output is None and args.format != "txt" else None)
    failure: UserError | None = None
    with LiveTranscriber(model.lm, model.mimi, model.tokenizer, timing, vad=args.vad) as live:
        source = _source(args, pcm)  # opened once the model is ready (entering fed its prefix)
        if pcm is None and sys.stderr.isatty():
            printer.status("listening; Ctrl-C to end")
        try:
            meter = _transcribe(live, source, printer)
        except UserError as e:  # the sound card went away: keep what was heard
            failure, meter = e, None
        finally:
            source.close()
        _show(printer, live.flush())
    printer.end()
    if meter is not None:
        delay = f" (plus the model's text delay, {timing.delay_seconds:g} s)"
        printer.status(f"live: {meter.summary()}{delay}")
    transcript = render(live.transcript, args.format)
    if output is not None:
        output.write_text(transcript, encoding="utf-8")
    elif args.format != "txt":
        sys.stdout.write(transcript)
        sys.stdout.flush()
    if failure is not None:
        raise UserError(f"{failure}; the transcript of what was heard was kept")
    return 0


def _source(args: argparse.Namespace, pcm: np.ndarray | None) -> AudioIO:
    if pcm is None:
        return SoundCard(
            args.input_device, play=False, max_backlog=None, instead="--live FILE, or give audio files"
        )
    return FileAudio(pcm, realtime=True)


def _transcribe(live: LiveTranscriber, source: AudioIO, printer: Printer) -> RealTimeMeter:
    """Frames until the input ends or Ctrl-C (taken between frames, so the model's state
    stays whole and the last words can still come out)."""
    meter: RealTimeMeter | None = None
    warned = False
    source.start()
    with _ctrl_c() as stop:
        while not stop.is_set() and (frame := source.read()) is not None:
            if meter is None:  # the first frame's audio ended just now
                meter = RealTimeMeter(start=time.monotonic() - FRAME_SECONDS)
            began = time.perf_counter()
            heard = live.push(frame)
            meter.frame(time.perf_counter() - began, time.monotonic())
            _show(printer, heard)
            if not warned and (why := meter.too_slow()) is not None:
                printer.status(
                    f"too slow for live transcription on this machine: {why}; going on without "
                    f"dropping audio, so the text falls behind (faster: {SPEEDUPS})"
                )
                warned = True
    return meter or RealTimeMeter(start=time.monotonic())


def _show(printer: Printer, heard: Heard) -> None:
    text = heard.text.lstrip() if not printer.line_open else heard.text
    if text:
        printer.text(text)
    if heard.end_of_turn and printer.line_open:
        printer.end()


@contextlib.contextmanager
def _ctrl_c() -> Iterator[threading.Event]:
    """An event set by the first Ctrl-C (a second one interrupts at once)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
