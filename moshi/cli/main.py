"""`moshi`: talk with Moshi, run it on files, transcribe, serve it.

Each subcommand lives in its own module with `add_parser(subparsers)`, which registers its
options and sets `run=function(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import NoReturn

from .. import __version__
from .common import UserError

# Subcommand modules, in the order `moshi --help` lists them.
SUBCOMMANDS = ["serve", "chat", "infer", "transcribe", "speak", "train", "data", "bench", "tiny-models"]


class _Parser(argparse.ArgumentParser):
    """A usage mistake ends in one line on stderr (exit code 2) that points to --help; the
    subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def get_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="moshi",
        description="Moshi in Python: full-duplex spoken dialogue, speech-to-text and text-to-speech "
        "with Kyutai's released models.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--version", action="version", version=f"moshi-rt {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"moshi.cli.{name.replace('-', '_')}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.run(args) or 0)
    except UserError as e:
        if args.debug:
            raise
        print(f"moshi {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
