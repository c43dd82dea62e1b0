"""`moshi infer IN [IN...] -o OUT_DIR`: Moshi's replies to recordings, offline."""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

from ..audio import FRAME_RATE, write_wav
from ..stream.engine import Engine
from ..stream.offline import QUIET_SECONDS, Dialogue, run_dialogues
from .common import UserError, add_model_args
from .files import check_output_dir, check_outputs, progress, read_inputs, unique_names
from .loading import load, resolve_dialogue
from .options import add_force_arg, add_sampling_args, add_subcommand, sampling_options

log = logging.getLogger(__name__)

DESCRIPTION = f"""\
Offline dialogue: each input is played to Moshi as if it came from a microphone, and
Moshi's side of the conversation is written to OUT_DIR/<input name>.wav (24 kHz), with
what Moshi said, word by word with start and end times in seconds, in
OUT_DIR/<input name>.json ({{"text": ..., "words": [{{"text", "start", "end"}}, ...]}}).

Inputs may be any format soundfile reads (wav, flac, ogg, mp3, ...), at any sample rate
and channel count (mixed to mono, resampled to 24 kHz). After an input ends, Moshi hears
silence until it has been quiet for {QUIET_SECONDS:g} s (so its reply is not cut), at most
--max-tail seconds; the output is aligned with the input and lasts as long as it, plus
that tail. Several inputs run as one batch (--batch-size at a time); with --seed, each
input's reply is reproducible whatever else is in the batch: the same words and audio
tokens exactly, the same audio up to float rounding (the codec's arithmetic depends on
the batch shape).
"""

EXAMPLES = """\
examples:
  moshi infer question.mp3 -o replies/
  moshi infer a.wav b.flac --stereo --seed 42 -o replies/
"""


def add_parser(subparsers: Any) -> None:
    p = add_subcommand(subparsers, "infer", "Moshi's replies to recordings (offline)", DESCRIPTION, EXAMPLES)
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files (the user's side)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="folder for the outputs")
    p.add_argument(
        "--stereo",
        action="store_true",
        help="write <name>.wav as stereo: the user (the input) left, Moshi right",
    )
    p.add_argument(
        "--max-tail",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="longest time Moshi may keep talking after the input ends",
    )
    p.add_argument("--batch-size", type=int, default=8, metavar="N", help="inputs run at once")
    add_force_arg(p)
    add_sampling_args(p)
    add_model_args(p, "dialogue")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not 0 <= args.max_tail < math.inf:
        raise UserError(f"--max-tail must be >= 0 seconds, got {args.max_tail}")
    inputs = read_inputs(args.inputs)
    names = unique_names(inputs)
    out_dir = Path(args.output)
    check_output_dir(out_dir)
    check_outputs([out_dir / f"{n}.{ext}" for n in names for ext in ("wav", "json")], args.force)

    files = resolve_dialogue(args)
    options = sampling_options(args, files.config)
    model = load(args, files)
    tail = round(args.max_tail * FRAME_RATE)
    dialogues = [Dialogue.of(x.pcm, tail) for x in inputs]
    end_of_padding = files.config.lm.text_end_padding_id

    planned = [d.input_frames + tail + 1 for d in dialogues]  # steps, at most
    with progress(sum(planned), "talking") as bar:

        def write(i: int, d: Dialogue) -> None:
            bar.total -= planned[i] - d.fed
            bar.refresh()
            out_dir.mkdir(parents=True, exist_ok=True)
            wav, meta = out_dir / f"{names[i]}.wav", out_dir / f"{names[i]}.json"
            write_wav(wav, d.stereo_pcm() if args.stereo else d.moshi_pcm())
            duration = len(d.moshi) / FRAME_RATE
            transcript = d.transcript(model.tokenizer, end_of_padding)
            saved = transcript.to_dict()
            if model.tokenizer.user_turns:
                saved["heard"] = d.heard_text()  # what the model wrote down of the user's words
            meta.write_text(json.dumps(saved, ensure_ascii=False) + "\n")
            log.info("%s -> %s (%.2f s), %s", inputs[i].path, wav, duration, meta)

        batch = min(args.batch_size, len(inputs))
        engine = Engine(model.mimi, model.lm, model.tokenizer, batch, options, ear=model.ear)
        with engine:
            run_dialogues(engine, dialogues, options, on_done=write, on_steps=bar.update)
    return 0
