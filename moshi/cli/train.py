"""`moshi train lm|codec|plot ...`: training, a thin wrapper of moshi/train/commands.py."""

from __future__ import annotations

import argparse
from typing import Any

from ..train.commands import add_commands
from .common import UserError
from .options import HelpFormatter, add_subcommand


def add_parser(subparsers: Any) -> None:
    p = add_subcommand(
        subparsers,
        "train",
        help="train or fine-tune models (LoRA, torchrun), plot runs",
        description="Train or fine-tune Moshi's LM, or train Mimi, from a YAML config; plot a run's losses.",
    )
    add_commands(p, HelpFormatter)
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    run = args.train_run
    try:
        return int(run(args))
    except (ValueError, FileNotFoundError) as e:
        raise UserError(str(e)) from e
