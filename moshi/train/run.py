"""The training loop every trainer shares: steps, checkpoints, exact resume, metrics, Ctrl-C.

A trainer is a `Task`: `train_step()` does one optimizer step and returns its metrics (the
same in every process), `state_dict()`/`load_state_dict()` hold everything a resume needs
but the RNG states (saved here, per process), `save_release(folder)` writes what inference
loads. `run(task, options, dist)`:

- resumes from the latest complete checkpoint of `options.run_dir` when there is one (the
  same losses as a run straight through: weights, optimizer, schedule, data position and
  RNG states are restored);
- checkpoints every `ckpt_freq` steps and at the end (checkpoints.py), keeping the
  `num_ckpt_keep` latest;
- logs every `log_freq` steps and evaluates every `eval_freq` steps (metrics.py);
- on SIGINT or SIGTERM (Ctrl-C, a scheduler's preemption) finishes the current step,
  checkpoints and returns `interrupted=True`; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .checkpoints import checkpoint_dir, complete_checkpoints, load_state, prune, save_state
from .distributed import Dist
from .metrics import MetricsLog


class Task(Protocol):
    sharded: bool  # state_dict() holds sharded tensors (FSDP): saved with torch.distributed.checkpoint

    def train_step(self) -> dict[str, float]: ...

    def evaluate(self) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def save_release(self, folder: Path) -> None: ...


@dataclass(frozen=True)
class RunOptions:
    run_dir: Path
    max_steps: int
    log_freq: int = 1
    ckpt_freq: int = 0  # < 1: only at the end
    do_ckpt: bool = True
    num_ckpt_keep: int | None = 3
    eval_freq: int = 0  # < 1: only at the end (when do_eval)
    do_eval: bool = False
    until_step: int | None = None  # stop (with a checkpoint) after this step; run again to go on
    progress: bool = True  # the progress bar


@dataclass(frozen=True)
class RunResult:
    step: int  # steps done
    interrupted: bool
    checkpoint: Path | None  # the last checkpoint written


class _Stop:
    """SIGINT/SIGTERM set a flag the loop reads between steps; a second SIGINT interrupts."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: no handlers
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def run(task: Task, options: RunOptions, d: Dist) -> RunResult:
    step = 0
    done = complete_checkpoints(options.run_dir)
    if done:
        step, folder = done[-1]
        state = load_state(folder, {"step": 0, "task": task.state_dict()}, d)
        task.load_state_dict(state["task"])
        step = int(state["step"])
    last = min(options.max_steps, options.until_step or options.max_steps)
    log = MetricsLog(options.run_dir, step, options.max_steps, d.is_main, options.progress)
    checkpoint: Path | None = None
    interrupted = False
    try:
        with _Stop() as stop:
            while step < last:
                t0 = time.perf_counter()
                metrics = task.train_step()
                step += 1
                dt = time.perf_counter() - t0
                metrics["step_s"] = dt
                for unit in ("frames", "tokens"):
                    if unit in metrics:
                        metrics[f"{unit}_per_s"] = metrics[unit] / dt
                log.progress(metrics)
                if step % options.log_freq == 0 or step == last:
                    log.log("train", step, metrics)
                end = step == options.max_steps
                if options.do_eval and (end or (options.eval_freq > 0 and step % options.eval_freq == 0)):
                    log.log("eval", step, task.evaluate())
                interrupted = d.any(stop.requested) and step < last
                due = options.ckpt_freq > 0 and step % options.ckpt_freq == 0
                if options.do_ckpt and (due or step == last or interrupted):
                    checkpoint = _save(task, options, d, step)
                if interrupted:
                    break
    finally:
        log.close()
    return RunResult(step, interrupted, checkpoint)


def run_options(config: Any, run_dir: Path, until_step: int | None, progress: bool) -> RunOptions:
    """From a training config's keys of the same names (the LM's TrainConfig, the codec's)."""
    return RunOptions(
        run_dir=run_dir,
        max_steps=config.max_steps,
        log_freq=config.log_freq,
        ckpt_freq=config.ckpt_freq,
        do_ckpt=config.do_ckpt,
        num_ckpt_keep=config.num_ckpt_keep,
        eval_freq=config.eval_freq,
        do_eval=config.do_eval,
        until_step=until_step,
        progress=progress,
    )


def prepare_run_dir(run_dir: str | Path, overwrite: bool, settings: dict[str, Any], d: Dist) -> Path:
    """The run directory, with the run's settings in `args.yaml`: resumed when it holds
    checkpoints, emptied first when `overwrite`."""
    run_dir = Path(run_dir)
    if d.is_main:
        if overwrite and run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        import yaml

        (run_dir / "args.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    d.barrier()
    return run_dir


def _save(task: Task, options: RunOptions, d: Dist, step: int) -> Path:
    folder = checkpoint_dir(options.run_dir, step)
    if d.is_main:
        (folder / "consolidated").mkdir(parents=True, exist_ok=True)
    d.barrier()
    task.save_release(folder / "consolidated")
    save_state(folder, {"step": step, "task": task.state_dict()}, d, task.sharded)
    if d.is_main:
        prune(options.run_dir, options.num_ckpt_keep)
    d.barrier()
    return folder
