"""`moshi bench`: run the benchmark scripts of bench/ (codec, LM, server, TTS), each printing
JSON lines, with the reference's numbers and ratios when `--reference` is given."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .common import UserError
from .options import add_subcommand

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"  # in a source checkout
BENCHES = ["codec", "lm", "server", "tts"]
WITH_REFERENCE = {"codec", "lm"}  # the peer package times these too


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        subparsers, "bench", help="run the benchmarks (codec, LM, server, TTS)", description=__doc__
    )
    parser.add_argument(
        "which",
        nargs="*",
        default=["codec", "lm"],
        metavar="NAME",
        help=f"benchmarks to run, among {', '.join(BENCHES)}",
    )
    parser.add_argument(
        "--reference",
        metavar="PYTHON",
        help="python of a venv with Kyutai's moshi package (shared/peer/setup.sh), for ratios",
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny run of each, to check they work")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not BENCH_DIR.is_dir():
        raise UserError(
            f"the benchmarks live in the source checkout's bench/ folder, not found at {BENCH_DIR}"
        )
    unknown = sorted(set(args.which) - set(BENCHES))
    if unknown:
        raise UserError(f"unknown benchmark {', '.join(unknown)}: choose among {', '.join(BENCHES)}")
    for name in args.which:
        cmd = [sys.executable, str(BENCH_DIR / f"{name}.py")]
        if args.smoke:
            cmd.append("--smoke")
        if args.reference and name in WITH_REFERENCE:
            cmd += ["--reference", args.reference]
        rc = subprocess.run(cmd, check=False).returncode
        if rc:
            raise UserError(f"bench/{name}.py failed (exit code {rc})")
    return 0
