"""`moshi transcribe IN [IN...]`: speech-to-text with word times (`--live`: transcribe_live.py)."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..stt import FORMATS, Transcript, render, transcribe_batch
from .audio_io import device_arg
from .common import UserError, add_model_args
from .files import Input, check_output_dir, check_outputs, progress, read_inputs, unique_names
from .loading import load_stt
from .options import add_force_arg, add_subcommand
from .transcribe_live import MICROPHONE, run_live

DESCRIPTION = """\
Speech-to-text with Kyutai's STT models: the text, and each word's start and end in
seconds of the input. Inputs may be any format soundfile reads (wav, flac, ogg, mp3, ...),
at any sample rate and channel count (mixed to mono, resampled to 24 kHz). Several inputs
run as one batch.

Word times take the model's text delay and silence prefix into account (its stt_config);
the end of the input is followed by enough silence for the last word to come out.

Formats: txt (the text), json ({"text": ..., "words": [{"text", "start", "end"}, ...]}),
srt and vtt (subtitles). With one input, the result goes to stdout or to -o FILE; with
several, to -o DIR (DIR/<input name>.<format>), or to stdout, each preceded by a line
"==> INPUT <==" (json: one object per line, with a "file" key added).

--live transcribes the microphone (or --live FILE: a file played in real time, as if from
a microphone) frame by frame, printing the text as the model writes it; Ctrl-C ends it,
and the transcript goes to -o FILE in --format (or to stdout: txt is the text printed as it
came, other formats are printed at the end, the live text then going to stderr). At the end,
stderr shows the real-time factor (compute over audio) and the lag (how long after the audio
the text came, on top of the model's own text delay). If the machine cannot keep up (more
than 80 ms of compute per 80 ms frame, or the text 2 s behind), one line says so and names
what is faster; the transcription goes on and drops nothing (the text falls behind).
"""

EXAMPLES = """\
examples:
  moshi transcribe talk.mp3
  moshi transcribe talk.mp3 --format srt -o talk.srt
  moshi transcribe a.wav b.flac c.ogg --format json -o transcripts/
  moshi transcribe --live
  moshi transcribe --live talk.wav --format srt -o talk.srt
"""


def add_parser(subparsers: Any) -> None:
    p = add_subcommand(subparsers, "transcribe", "speech-to-text with word times", DESCRIPTION, EXAMPLES)
    p.add_argument("inputs", nargs="*", metavar="IN", help="audio files")
    p.add_argument(
        "--live",
        nargs="?",
        const=MICROPHONE,
        metavar="FILE",
        help="transcribe the microphone as it hears, or FILE played in real time",
    )
    p.add_argument(
        "--input-device",
        type=device_arg,
        help="with --live: the microphone, index or name (default: the system's)",
    )
    p.add_argument("-o", "--output", metavar="PATH", help="output file (one input) or folder (several)")
    p.add_argument("--format", choices=FORMATS, default="txt", help="output format")
    p.add_argument(
        "--vad",
        action="store_true",
        help="also detect ends of turns with the model's voice-activity head (models that have "
        "one, e.g. kyutai/stt-1b-en_fr): json gets an 'end_of_turn' list of times, txt one line "
        "per turn, and subtitle cues break there",
    )
    p.add_argument("--batch-size", type=int, default=8, metavar="N", help="inputs transcribed at once")
    add_force_arg(p)
    add_model_args(p, "stt")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.live is not None:
        if args.inputs:
            raise UserError("--live transcribes the microphone or one --live FILE: give no other inputs")
        return run_live(args)
    if not args.inputs:
        raise UserError("no input: give audio files, or --live for the microphone")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    inputs = read_inputs(args.inputs)
    names = unique_names(inputs)
    outputs = _output_paths(args, names)
    if outputs is not None:
        check_outputs(outputs, args.force)

    model, timing = load_stt(args)
    # Inputs of similar lengths share a batch (less padding); results come back in order.
    order = sorted(range(len(inputs)), key=lambda i: len(inputs[i].pcm))
    groups = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    steps = [len(g) * max(timing.steps(len(inputs[i].pcm)) for i in g) for g in groups]
    transcripts: list[Transcript | None] = [None] * len(inputs)
    with progress(sum(steps), "transcribing") as bar:
        for group in groups:
            results = transcribe_batch(
                model.lm,
                model.mimi,
                [inputs[i].pcm for i in group],
                model.tokenizer,
                timing,
                vad=args.vad,
                on_steps=functools.partial(_advance, bar, len(group)),
            )
            for i, t in zip(group, results, strict=True):
                transcripts[i] = t
    _write(args, inputs, [t for t in transcripts if t is not None], outputs)
    return 0


def _advance(bar: tqdm, width: int, steps: int) -> None:
    bar.update(steps * width)


def _output_paths(args: argparse.Namespace, names: list[str]) -> list[Path] | None:
    """Where each transcript goes (None: stdout)."""
    if args.output is None:
        return None
    out = Path(args.output)
    if len(names) == 1 and not out.is_dir():
        return [out]
    if out.suffix and not out.is_dir():
        raise UserError(f"-o {out} names a file, but {len(names)} inputs need a folder: give -o DIR")
    check_output_dir(out)
    return [out / f"{name}.{args.format}" for name in names]


def _write(
    args: argparse.Namespace, inputs: list[Input], transcripts: list[Transcript], outputs: list[Path] | None
) -> None:
    if outputs is not None:
        for path, t in zip(outputs, transcripts, strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(t, args.format), encoding="utf-8")
        return
    for x, t in zip(inputs, transcripts, strict=True):
        if len(inputs) == 1:
            sys.stdout.write(render(t, args.format))
        elif args.format == "json":
            sys.stdout.write(json.dumps({"file": str(x.path), **t.to_dict()}, ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(f"==> {x.path} <==\n{render(t, args.format)}")
    sys.stdout.flush()
