"""Where a run's numbers go: `RUN_DIR/metrics.jsonl` (one JSON object a line, with `split`
"train" or "eval" and `step`), TensorBoard (`RUN_DIR/tensorboard`) when it is installed,
and a progress bar (tqdm) with step, loss, lr, throughput and ETA. Only the main process
writes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tqdm import tqdm

METRICS = "metrics.jsonl"


class MetricsLog:
    def __init__(self, run_dir: Path, start_step: int, total_steps: int, enabled: bool, progress: bool):
        self.path = run_dir / METRICS
        self.enabled = enabled
        self.writer: Any = None
        self.bar = tqdm(
            total=total_steps, initial=start_step, disable=not (enabled and progress), unit="step"
        )
        if not enabled:
            return
        self._truncate(start_step)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:  # tensorboard is an optional extra
            self.writer = None

    def _truncate(self, start_step: int) -> None:
        """On resume, drop lines of steps after the checkpoint (they will be run again)."""
        if not self.path.is_file():
            return
        kept = [line for line in self.path.read_text().splitlines() if json.loads(line)["step"] <= start_step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def log(self, split: str, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        line = {"split": split, "step": step, **{k: _finite(v) for k, v in values.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(line) + "\n")
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(f"{split}/{k}", v, step)

    def progress(self, values: dict[str, float]) -> None:
        self.bar.update(1)
        shown = {k: f"{values[k]:.3g}" for k in ("loss", "lr", "frames_per_s") if k in values}
        self.bar.set_postfix(shown, refresh=False)

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None
