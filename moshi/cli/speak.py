"""`moshi speak`: text to speech with Kyutai's TTS models.

    moshi speak "Hello there." -o hello.wav
    moshi speak -i script.txt --voice alice.safetensors --voice bob.safetensors -o dialogue.wav
    llm | moshi speak --stream --play          # speak lines as they arrive, play as generated

Text comes from the argument, a file (`-i`) or stdin, one turn per line. With two voices
or more, lines alternate between the main speaker (voice 1) and the other one (voice 2);
with one voice, every line is the main speaker's. Audio is decoded frame by frame as it is
generated: `--play` starts as soon as the first 80 ms are ready.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import OUTPUT_FORMATS, output_format, write_audio
from ..tiny import VOICE_FILE
from ..tts import SpeechStream, TextInput, load_tts
from .audio_io import SoundCard, device_arg
from .common import (
    UserError,
    add_model_args,
    device_of,
    dtype_of,
    model_files,
    quantize_if_asked,
)
from .files import check_outputs
from .options import add_force_arg, add_subcommand

DEFAULT_GUIDANCE = 2.0


def add_parser(subparsers: Any) -> None:
    p = add_subcommand(
        subparsers,
        "speak",
        help="text to speech (Kyutai's TTS models)",
        description=__doc__,
    )
    p.add_argument("text", nargs="?", help="the text to speak (else -i FILE, else stdin)")
    p.add_argument("-i", "--input", metavar="FILE", help="text file, one turn per line ('-': stdin)")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help=f"write the speech to this file ({', '.join(OUTPUT_FORMATS)}: the format the suffix names)",
    )
    p.add_argument("--play", action="store_true", help="play the speech as it is generated (sounddevice)")
    p.add_argument("--output-device", type=device_arg, help="with --play: speakers, index or name")
    p.add_argument("--stream", action="store_true", help="read stdin line by line, speaking as lines arrive")
    p.add_argument(
        "--voice",
        action="append",
        metavar="NAME|FILE",
        help="a voice file, or a voice of kyutai/tts-voices (repeat for more speakers)",
    )
    p.add_argument(
        "--cfg",
        dest="guidance",
        type=float,
        default=DEFAULT_GUIDANCE,
        help="guidance strength: a condition for CFG-distilled models (1.0 to 4.0 by 0.5), else real CFG",
    )
    p.add_argument("--temp", type=float, default=0.6, help="sampling temperature (0: greedy)")
    p.add_argument("--seed", type=int, help="seed, for reproducible speech (default: a random one)")
    p.add_argument("--n-q", type=int, metavar="N", help="generate only N audio codebooks (faster, coarser)")
    p.add_argument("--timings", metavar="JSON", help="write each word's start and end (seconds) here")
    add_force_arg(p)
    add_model_args(p, "tts")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.output and not args.play:
        raise UserError("nothing to do: give -o FILE.wav and/or --play")
    if args.output:
        try:
            output_format(args.output)
        except ValueError as e:
            raise UserError(str(e)) from None
    check_outputs([Path(x) for x in (args.output, args.timings) if x], args.force)
    device = device_of(args)
    args.voice = args.voice or []
    text = _text_source(args)
    files = model_files(args)
    if args.model == "tiny" and not args.voice:
        args.voice = [str(files.lm_weights.parent / VOICE_FILE)]  # the tiny model's random voice
    lm = files.config.lm
    distilled = lm.conditioner("cfg") is not None  # CFG is a condition, else guidance runs for real
    player = _player(args.output_device) if args.play else None
    try:
        tts, mimi = load_tts(
            files,
            device=device,
            dtype=dtype_of(args, device),
            n_q=args.n_q,
            fuse_lora=args.fuse_lora,
            temp=args.temp,
            seed=args.seed,
            guidance=args.guidance if lm.conditioners and not distilled else 1.0,
        )
        quantize_if_asked(args, device, tts.model, mimi)
        stream = SpeechStream(tts, mimi, text, args.voice, args.guidance if distilled else None)
        if isinstance(text, TextInput):
            _read_lines_into(text, sys.stdin, new_turns=len(args.voice) >= 2)
        spoken = _speak(stream, player)
        if player is not None:
            player.drain()
    except (ValueError, FileNotFoundError) as e:
        raise UserError(str(e)) from e
    finally:
        if player is not None:
            player.close()

    result = stream.result
    assert result is not None
    pcm = spoken.pcm
    seconds = len(pcm) / mimi.sample_rate
    if args.output:
        write_audio(args.output, pcm, mimi.sample_rate)
    if args.timings:
        words = [{"word": w.word, "start": w.start, "end": w.end} for w in result.words]
        Path(args.timings).write_text(json.dumps({"words": words, "seconds": seconds}, indent=1) + "\n")
    underruns = player.counters()[0] if player is not None else 0
    print(
        f"{seconds:.2f} s of speech, {len(result.transcript)} words, first audio after {spoken.first:.2f} s "
        f"(the model had started {spoken.words_before_audio} of the {len(result.transcript)} words), "
        f"real-time factor {spoken.elapsed / max(seconds, 1e-9):.2f} (compute over audio)"
        + (f"; the speakers ran dry {underruns} times (slower than real time)" if underruns else "")
        + (f"; wrote {args.output}" if args.output else ""),
        file=sys.stderr,
    )
    return 0


@dataclass(frozen=True)
class _Spoken:
    pcm: np.ndarray  # [T]
    first: float  # seconds to the first audio
    elapsed: float  # seconds in all
    words_before_audio: int  # words of the text the model had started when the first audio came


def _speak(stream: SpeechStream, player: SoundCard | None) -> _Spoken:
    """Generate everything, playing each chunk as it comes."""
    chunks, t0, first, words = [], time.perf_counter(), None, 0
    for chunk in stream:
        if first is None:
            first, words = time.perf_counter() - t0, len(stream.transcript)
            if player is not None:
                player.start()
        chunks.append(chunk.pcm)
        if player is not None:
            player.write(chunk.pcm)
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return _Spoken(pcm, first or 0.0, time.perf_counter() - t0, words)


def _text_source(args: argparse.Namespace) -> list[str] | TextInput:
    """The script (turns), or a TextInput fed from stdin for --stream."""
    if args.stream:
        if args.text is not None or (args.input not in (None, "-")):
            raise UserError("--stream reads stdin: give no text argument and no -i FILE")
        return TextInput()
    if args.text is not None and args.input is not None:
        raise UserError("give the text or -i FILE, not both")
    if args.text is not None:
        raw = args.text
    elif args.input not in (None, "-"):
        try:
            raw = Path(args.input).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"cannot read {args.input}: {e}") from e
    elif sys.stdin.isatty() and args.input is None:
        raise UserError("no text: give it as an argument, with -i FILE, or on stdin")
    else:
        raw = sys.stdin.read()
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    if not lines:
        raise UserError("no text to speak")
    return lines if len(args.voice) >= 2 else [" ".join(lines)]


def _read_lines_into(text: TextInput, source: Any, new_turns: bool) -> None:
    """A thread copying lines of `source` into `text` as they arrive, closing it at the end."""

    def pump() -> None:
        first = True
        try:
            for line in source:
                if not line.strip():
                    continue
                if new_turns and not first:
                    text.new_turn()
                text.write(line.strip() + "\n")
                first = False
        finally:
            text.close()

    threading.Thread(target=pump, daemon=True, name="speak-stdin").start()


def _player(device: str | int | None) -> SoundCard:
    return SoundCard(output_device=device, listen=False, instead="-o FILE instead of --play")
