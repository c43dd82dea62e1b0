"""`python -m moshi.train lm CONFIG.yaml` (and under torchrun): see commands.py."""

from __future__ import annotations

import argparse
import logging
import sys

from .commands import add_commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m moshi.train", description="Train Moshi's models.")
    add_commands(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.train_run(args))
    except (ValueError, FileNotFoundError) as e:
        print(f"{parser.prog} {args.train_command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
