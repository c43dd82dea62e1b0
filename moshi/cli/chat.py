"""`moshi chat`: talk with Moshi in the terminal, locally or through a server."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..lm.config import KyutaiConfig
from ..stream.engine import Engine
from .audio_io import AudioIO, FileAudio, SoundCard, device_arg, list_devices
from .chat_output import Printer, Recorder
from .common import UserError, add_model_args
from .files import check_outputs, read_inputs
from .loading import load, resolve_dialogue
from .options import add_force_arg, add_sampling_args, add_subcommand, sampling_options

DESCRIPTION = """\
Full-duplex voice chat in the terminal: speak into the microphone and Moshi answers
through the speakers, both at once, while what Moshi says is printed as it speaks. With a
model that writes down what it hears (the small dialogue model does), what you say is
printed too, a line per turn: "you: ..." then "moshi: ...". The model runs on this
machine, or on a server with --url (this project's `moshi serve` or Kyutai's: the same
protocol). Audio problems are reported on stderr: "underrun" when Moshi's audio came too
late to play (the model or the network is slower than real time), "lagging" when the
model fell behind the microphone and old input was dropped.

Ctrl-C ends the conversation; with --save, it is written to a wav file (stereo: you on
the left channel, Moshi on the right).

--input-file/--output-file replace the sound card with files: the input file plays the
microphone's part (as fast as the model runs; in real time with --url) and Moshi's voice
is written to the output file.

With --url, the sampling flags given are sent to the server (which may cap them); the
model flags are for the local model only.
"""

EXAMPLES = """\
examples:
  moshi chat
  moshi chat --save conversation.wav
  moshi chat --url wss://gpu-box:8998 --insecure
  moshi chat --input-file question.wav --output-file reply.wav
"""


def add_parser(subparsers: Any) -> None:
    p = add_subcommand(subparsers, "chat", "voice chat with Moshi in the terminal", DESCRIPTION, EXAMPLES)
    g = p.add_argument_group("where Moshi runs")
    g.add_argument(
        "--url",
        help="ws:// or wss:// address of a server, e.g. ws://host:8998 (http(s):// works too; the path "
        "defaults to /api/chat); without it, the model runs here",
    )
    g.add_argument("--auth-token", help="token for servers that ask for one (with --url)")
    g.add_argument("--insecure", action="store_true", help="accept a self-signed certificate (wss://)")
    a = p.add_argument_group("audio")
    a.add_argument("--input-device", type=device_arg, help="microphone: index or name (see --list-devices)")
    a.add_argument("--output-device", type=device_arg, help="speakers: index or name (see --list-devices)")
    a.add_argument("--list-devices", action="store_true", help="list the sound devices and exit")
    a.add_argument(
        "--save",
        metavar="WAV",
        help="write the conversation there at the end (stereo: you left, Moshi right)",
    )
    a.add_argument("--input-file", metavar="AUDIO", help="play this file instead of the microphone")
    a.add_argument("--output-file", metavar="WAV", help="write Moshi's voice here instead of playing it")
    add_force_arg(p)
    add_sampling_args(p)
    add_model_args(p, "dialogue")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.list_devices:
        print(list_devices())
        return 0
    if (args.input_file is None) != (args.output_file is None):
        raise UserError("--input-file and --output-file go together (they replace the sound card)")
    if args.url is not None:
        if not args.url.startswith(("ws://", "wss://", "http://", "https://")):
            raise UserError(f"--url must start with ws:// or wss:// (or http(s)://), got {args.url!r}")
        sampling_options(args, KyutaiConfig())  # the flags' values are checked here too
    outputs = [Path(p) for p in (args.save, args.output_file) if p is not None]
    check_outputs(outputs, args.force)
    pcm = read_inputs([args.input_file])[0].pcm if args.input_file else None

    # The sound card is opened first: no point loading a model for a machine that cannot play it.
    audio = _audio(args, pcm, realtime=args.url is not None)
    try:
        if args.url is not None:
            from .chat_remote import chat_remote

            return _conversation(args, audio, lambda p, r: chat_remote(args, audio, p, r))

        files = resolve_dialogue(args)
        options = sampling_options(args, files.config)
        model = load(args, files)
        engine = Engine(model.mimi, model.lm, model.tokenizer, max_sessions=1, options=options, ear=model.ear)
        with engine:
            if audio.realtime:
                engine.warmup()
            return _conversation(args, audio, lambda p, r: chat_local(engine, audio, p, r))
    finally:
        audio.close()


def _audio(args: argparse.Namespace, pcm: np.ndarray | None, realtime: bool) -> AudioIO:
    if pcm is None:
        return SoundCard(args.input_device, args.output_device)
    # One silent frame after the input: Moshi's audio comes one frame late.
    return FileAudio(pcm, Path(args.output_file), realtime=realtime, tail_frames=1)


def _conversation(args: argparse.Namespace, audio: AudioIO, talk: Callable[[Printer, Recorder], None]) -> int:
    """Run `talk(printer, recorder)` until the input ends or Ctrl-C, then save."""
    printer, recorder = Printer(), Recorder()
    if audio.realtime and sys.stderr.isatty():
        printer.status("talk to Moshi; Ctrl-C to end")
    failure: UserError | None = None
    try:
        audio.start()
        talk(printer, recorder)
    except KeyboardInterrupt:
        pass
    except UserError as e:  # the server or the sound card went away: the recording is kept
        failure = e
    finally:
        audio.close()
        printer.end()
        printer.audio_problems(audio.counters(), final=True)
    if failure is not None and not recorder.user:  # refused at once: nothing to keep
        raise failure
    audio.finish()
    if args.save is not None:
        recorder.save(Path(args.save))
    if failure is not None:
        kept = [str(p) for p in (args.output_file, args.save) if p is not None]
        raise UserError(f"{failure}; kept what was recorded: {', '.join(kept)}" if kept else str(failure))
    return 0


def chat_local(engine: Engine, audio: AudioIO, printer: Printer, recorder: Recorder) -> None:
    """The model here: one engine slot, one step per 80 ms of microphone. A model that writes
    down what it hears shows both sides, a line per turn ("you: ...", "moshi: ...")."""
    slot = engine.open_slot()
    moshi = "moshi" if engine.tokenizer is not None and engine.tokenizer.user_turns else None
    while (frame := audio.read()) is not None:
        out = engine.step({slot: frame})[slot]
        recorder.user.append(frame)
        if out.pcm is not None:
            audio.write(out.pcm)
            recorder.moshi.append(out.pcm)
        if out.heard:
            printer.text(out.heard, speaker="you")
        if out.text:
            printer.text(out.text, speaker=moshi)
        printer.audio_problems(audio.counters())
