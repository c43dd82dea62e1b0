"""`moshi train lm|codec|plot|annotate ...`: training, a thin wrapper of
moshi/train/commands.py (lm, codec, plot) and moshi/train/annotate.py (annotate, which takes
the model flags)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ..train.commands import add_commands
from .common import UserError, add_model_args
from .options import HelpFormatter, add_force_arg, add_subcommand

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    p = add_subcommand(
        subparsers,
        "train",
        help="train or fine-tune models (LoRA, torchrun), annotate data, plot runs",
        description="Train or fine-tune Moshi's LM, or train Mimi, from a YAML config; write word "
        "alignments for a data manifest; plot a run's losses.",
    )
    sub = add_commands(p, HelpFormatter)
    a = sub.add_parser(
        "annotate",
        help="write the word alignments (x.json beside x.wav) of a manifest's files",
        description="Transcribe each file of a .jsonl manifest with a speech-to-text model, each "
        "channel as its own speaker (left: SPEAKER_MAIN), and write moshi-finetune's alignment "
        "files beside the audio.",
        formatter_class=HelpFormatter,
    )
    a.add_argument("manifest", help="the .jsonl manifest")
    add_force_arg(a)
    add_model_args(a, "stt", embedded_default=False)
    a.set_defaults(train_run=_annotate)
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.train_run(args))
    except (ValueError, FileNotFoundError) as e:
        raise UserError(str(e)) from e


def _annotate(args: argparse.Namespace) -> int:
    from ..train.annotate import annotate
    from .loading import load, resolve_speech_to_text

    model = load(args, resolve_speech_to_text(args))
    report = annotate(
        args.manifest,
        model.lm,
        model.mimi,
        model.tokenizer,
        model.files.config.stt_config,
        overwrite=args.force,
        on_file=lambda path: log.info("wrote %s", path),
    )
    kept = f", {len(report.kept)} kept (--force to rewrite)" if report.kept else ""
    skipped = "".join(f", {n} skipped ({why})" for why, n in report.skipped.items())
    print(f"{len(report.written)} alignment files written{kept}{skipped}")
    return 0
