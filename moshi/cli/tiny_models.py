"""`moshi tiny-models DIR`: write tiny models of every kind, to try each command without a
GPU or a download (random weights: they babble)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..tiny import write_tiny_models
from .files import make_folder
from .options import add_subcommand

EXAMPLES = """\
examples:
  moshi tiny-models /tmp/tiny
  moshi chat --config /tmp/tiny/dialogue/config.json --device cpu
  moshi serve --config /tmp/tiny/dialogue/config.json --device cpu
  moshi infer question.wav -o replies/ --config /tmp/tiny/dialogue/config.json --device cpu
  moshi transcribe talk.wav --config /tmp/tiny/stt/config.json --device cpu
  moshi speak "Hello." --voice /tmp/tiny/tts/voice.safetensors -o hello.wav --config /tmp/tiny/tts/config.json
"""


def add_parser(subparsers: Any) -> None:
    p = add_subcommand(
        subparsers,
        "tiny-models",
        help="write tiny models (dialogue, stt, tts) to try every command",
        description=__doc__ + "\nDIR/dialogue, DIR/stt and DIR/tts each hold a config.json for --config.",
        epilog=EXAMPLES,
    )
    p.add_argument("dir", metavar="DIR", help="folder to write them to (files there are overwritten)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    make_folder(root)
    for kind, config in write_tiny_models(root).items():
        print(f"{kind}: --config {config}")
    return 0
