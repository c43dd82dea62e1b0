"""`moshi train codec CONFIG.yaml`: the run, from a config to checkpoints Mimi loads.

Checkpoints: `RUN_DIR/checkpoints/checkpoint_STEP/consolidated/` holds `mimi.safetensors`
and `mimi_config.json` (Kyutai's layout: `load_mimi(weights, config)` reads them) and
`state.pt` beside it what a resume needs. Metrics: `RUN_DIR/metrics.jsonl`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ...audio import exact_div
from ...codec import save_mimi
from .config import CodecTrainConfig
from .data import AudioCrops
from .distill import SemanticDistiller, Teacher, load_teacher
from .init import build_mimi
from .step import CodecGenerator, CodecTrainer

MIMI_WEIGHTS = "mimi.safetensors"
MIMI_CONFIG = "mimi_config.json"


def build_trainer(
    cfg: CodecTrainConfig, device: torch.device, teacher: Teacher | None = None
) -> CodecTrainer:
    """The model, its distillation head and the trainer, from the config (`teacher`
    overrides `distill.teacher`)."""
    arch = cfg.model.architecture()
    n = cfg.model.num_codebooks or arch.total_codebooks
    mimi = build_mimi(arch, cfg.model.weights, n, device)
    if teacher is None and cfg.distill.teacher is not None:
        teacher = load_teacher(cfg.distill.teacher, cfg.distill.teacher_kwargs)
    distiller = (
        None if teacher is None else SemanticDistiller(teacher, arch.dimension, arch.sample_rate, device)
    )
    return CodecTrainer(CodecGenerator(mimi, n, cfg.quantizer, distiller), cfg)


def save_checkpoint(trainer: CodecTrainer, folder: Path) -> Path:
    """Write the Mimi files (and nothing else) into `folder`; returns the weights' path."""
    folder.mkdir(parents=True, exist_ok=True)
    save_mimi(trainer.generator.mimi, folder / MIMI_WEIGHTS, folder / MIMI_CONFIG)
    return folder / MIMI_WEIGHTS


def train(cfg: CodecTrainConfig, data: AudioCrops | None = None, teacher: Teacher | None = None) -> Path:
    """Run the whole training; returns the last checkpoint's folder."""
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    trainer = build_trainer(cfg, device, teacher)
    mimi = trainer.generator.mimi
    crop = exact_div(cfg.duration_sec * mimi.frame_rate, 1) * mimi.frame_size
    if data is None:
        data = AudioCrops.from_manifest(cfg.data.train_data, mimi.sample_rate, crop)
    generator = torch.Generator().manual_seed(cfg.seed)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / "metrics.jsonl").open("a") as log:
        for step in range(cfg.max_steps):
            metrics = trainer.step(data.batch(cfg.batch_size, generator).to(device), step)
            if (step + 1) % cfg.log_freq == 0:
                log.write(json.dumps({"split": "train", "step": step + 1, **metrics}) + "\n")
            if cfg.ckpt_freq > 0 and (step + 1) % cfg.ckpt_freq == 0 and step + 1 < cfg.max_steps:
                save_checkpoint(
                    trainer, run_dir / "checkpoints" / f"checkpoint_{step + 1:06d}" / "consolidated"
                )
    last = run_dir / "checkpoints" / f"checkpoint_{cfg.max_steps:06d}" / "consolidated"
    save_checkpoint(trainer, last)
    return last
