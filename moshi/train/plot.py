"""`moshi train plot RUN_DIR`: the loss curves of a run (from RUN_DIR/metrics.jsonl) as a PNG:
total, text, semantic and acoustic losses of training, and the evaluations' total loss."""

from __future__ import annotations

import json
from pathlib import Path

from .metrics import METRICS

CURVES = ("loss", "text_loss", "semantic_loss", "acoustic_loss")


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / METRICS
    if not path.is_file():
        raise ValueError(f"{run_dir} has no {METRICS} (is it a training run directory?)")
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: a line is not JSON ({e})") from e


def plot_run(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write the PNG (default RUN_DIR/losses.png); returns its path."""
    try:
        import matplotlib
    except ImportError as e:
        raise ValueError("plotting needs matplotlib: pip install 'moshi-rt[train]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    lines = read_metrics(run_dir)
    train = [x for x in lines if x.get("split") == "train"]
    evals = [x for x in lines if x.get("split") == "eval" and x.get("loss") is not None]
    if not train:
        raise ValueError(f"{run_dir / METRICS} has no training steps yet")
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for name in CURVES:
        points = [(x["step"], x[name]) for x in train if x.get(name) is not None]
        if points:
            ax.plot(*zip(*points, strict=True), label=name.replace("_", " "), lw=1.5 if name == "loss" else 1)
    if evals:
        ax.plot([x["step"] for x in evals], [x["loss"] for x in evals], "o--", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title(run_dir.name)
    ax.grid(alpha=0.3)
    ax.legend()
    out = Path(output) if output is not None else run_dir / "losses.png"
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
