"""The `train` subcommands (lm, codec, cache, plot), shared by `moshi train ...` (moshi/cli/train.py) and
`python -m moshi.train ...` (what torchrun runs: `torchrun --nproc-per-node N -m
moshi.train lm CONFIG.yaml`). Each sets `train_run(args) -> exit code`; user errors are
ValueErrors, printed as one line by the caller."""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .run import RunResult

log = logging.getLogger(__name__)
INTERRUPTED = 130  # as a shell reports Ctrl-C


def add_commands(
    parser: argparse.ArgumentParser, formatter: Any = argparse.ArgumentDefaultsHelpFormatter
) -> Any:
    """Add the subcommands to `parser`; returns its subparsers (for more)."""
    sub = parser.add_subparsers(dest="train_command", metavar="TRAIN_COMMAND", required=True)
    resumable = (
        "A run directory holding checkpoints is resumed from the latest. Ctrl-C saves a checkpoint "
        "and stops. Several processes: torchrun --nproc-per-node N -m moshi.train {} CONFIG.yaml"
    )
    for name, run, help, description in [
        (
            "lm",
            _lm,
            "train or fine-tune (LoRA or full) a multistream LM from a YAML config",
            "Train an LM as CONFIG.yaml says (moshi-finetune's keys work; see README.md).",
        ),
        (
            "codec",
            _codec,
            "train a Mimi codec (from scratch or from weights) from a YAML config",
            "Train Mimi as CONFIG.yaml says (see README.md, 'Train Mimi').",
        ),
    ]:
        p = sub.add_parser(
            name, help=help, description=f"{description} {resumable.format(name)}", formatter_class=formatter
        )
        p.add_argument("config", help="the YAML config")
        p.add_argument("--until-step", type=int, metavar="N", help="stop after step N (with a checkpoint)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar (metrics still logged)")
        p.set_defaults(train_run=run)
    p = sub.add_parser(
        "cache",
        help="encode a run's audio into its codes cache first, on every core",
        description="Encode the audio of CONFIG.yaml's manifests that its codes cache lacks, one "
        "process of one thread per worker: `moshi train lm` then finds it all there.",
        formatter_class=formatter,
    )
    p.add_argument("config", help="the YAML config of `moshi train lm`")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    p.set_defaults(train_run=_cache)
    p = sub.add_parser(
        "plot",
        help="write a PNG of a run's loss curves",
        description="Plot RUN_DIR/metrics.jsonl (needs matplotlib).",
        formatter_class=formatter,
    )
    p.add_argument("run_dir", help="a training run directory")
    p.add_argument("-o", "--output", help="the PNG (default: RUN_DIR/losses.png)")
    p.set_defaults(train_run=_plot)
    return sub


def _lm(args: argparse.Namespace) -> int:
    from .config import TrainConfig
    from .lm import main

    return _report(
        main(TrainConfig.load(args.config), until_step=args.until_step, progress=not args.no_progress)
    )


def _codec(args: argparse.Namespace) -> int:
    from .codec import CodecTrainConfig, main

    config = CodecTrainConfig.load(args.config)
    return _report(main(config, until_step=args.until_step, progress=not args.no_progress))


def _report(result: RunResult) -> int:
    if result.interrupted:
        log.info(
            "interrupted after step %d: checkpoint %s; run the same command to resume",
            result.step,
            result.checkpoint,
        )
        return INTERRUPTED
    log.info("done: %d steps, last checkpoint %s", result.step, result.checkpoint)
    return 0


def _cache(args: argparse.Namespace) -> int:
    from .config import TrainConfig
    from .fill_cache import fill_cache

    fill_cache(TrainConfig.load(args.config), args.workers)
    return 0


def _plot(args: argparse.Namespace) -> int:
    from .plot import plot_run

    print(plot_run(args.run_dir, args.output))
    return 0
