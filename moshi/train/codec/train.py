"""`moshi train codec CONFIG.yaml`: Mimi trained on the shared run loop (moshi/train/run.py:
checkpoints with exact resume, metrics, progress, Ctrl-C, torchrun/DDP).

Each checkpoint's `consolidated/` folder holds `mimi.safetensors` and `mimi_config.json`,
Kyutai's layout: `load_mimi(weights, config)` (and every `--mimi-weight` flag) reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...codec import MIMI_CONFIG, MIMI_WEIGHTS, save_mimi
from ..distributed import Dist, close_distributed, init_distributed, wrap_model
from ..run import RunResult, prepare_run_dir, run, run_options
from .config import CodecTrainConfig
from .data import AudioCrops
from .distill import SemanticDistiller, Teacher, load_teacher
from .init import build_mimi
from .step import CodecGenerator, CodecTrainer

EVAL_SEED = 1234  # evaluation crops: the same at every evaluation


def build_trainer(
    cfg: CodecTrainConfig, device: torch.device, teacher: Teacher | None = None, d: Dist | None = None
) -> CodecTrainer:
    """The model, its distillation head and the trainer, from the config (`teacher`
    overrides `distill.teacher`); under DDP when `d` has several processes."""
    arch = cfg.model.architecture()
    n = cfg.model.num_codebooks or arch.total_codebooks
    torch.manual_seed(cfg.seed)  # the same fresh weights in every process
    mimi = build_mimi(arch, cfg.model.weights, n, device)
    if teacher is None and cfg.distill.teacher is not None:
        teacher = load_teacher(cfg.distill.teacher, cfg.distill.teacher_kwargs)
    distiller = (
        None if teacher is None else SemanticDistiller(teacher, arch.dimension, arch.sample_rate, device)
    )
    generator = CodecGenerator(mimi, n, cfg.quantizer, distiller, cfg.model.decoder_only).to(device)
    if d is None:
        return CodecTrainer(generator, cfg)
    dd = d
    return CodecTrainer(generator, cfg, wrap=lambda m: wrap_model(m, dd, fsdp=False, units=[]))


class CodecTask:
    """The run loop's task (moshi/train/run.py's `Task`): one step on a batch of random crops."""

    sharded = False

    def __init__(self, trainer: CodecTrainer, data: AudioCrops, cfg: CodecTrainConfig, d: Dist):
        self.trainer, self.data, self.cfg, self.d = trainer, data, cfg, d
        self.step = 0
        self.batches = torch.Generator().manual_seed(cfg.seed * 1000 + d.rank)  # the data position

    def train_step(self) -> dict[str, float]:
        pcm = self.data.batch(self.cfg.batch_size, self.batches).to(self.d.device)
        metrics = self.trainer.step(pcm, self.step)
        self.step += 1
        frames = pcm.shape[0] * pcm.shape[-1] // self.trainer.generator.mimi.frame_size
        return {**self._mean(metrics), "frames": frames * self.d.world_size}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Reconstruction losses on fixed crops, the model in eval mode (all codebooks)."""
        batches = torch.Generator().manual_seed(EVAL_SEED + self.d.rank)
        model, totals = self.trainer.generator, torch.zeros(2)
        model.eval()
        for _ in range(self.cfg.eval_batches):
            pcm = self.data.batch(self.cfg.batch_size, batches).to(self.d.device)
            out, _, _ = model(pcm)
            totals += torch.tensor([float(self.trainer.mel(out, pcm)), float((out - pcm).abs().mean())])
        mel, waveform = (totals / self.cfg.eval_batches).tolist()
        return self._mean({"mel": mel, "waveform": waveform})

    def _mean(self, metrics: dict[str, float]) -> dict[str, float]:
        """The mean over processes (the same in every process)."""
        if not self.d.enabled:
            return metrics
        values = torch.tensor(list(metrics.values()), dtype=torch.float64, device=self.d.device)
        return dict(zip(metrics, (self.d.all_reduce(values) / self.d.world_size).tolist(), strict=True))

    def state_dict(self) -> dict[str, Any]:
        return {"trainer": self.trainer.state_dict(), "step": self.step, "batches": self.batches.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trainer.load_state_dict(state["trainer"])
        self.step = int(state["step"])
        self.batches.set_state(state["batches"].cpu())

    def save_release(self, folder: Path) -> None:
        if self.d.is_main:
            save_mimi(self.trainer.generator.mimi, folder / MIMI_WEIGHTS, folder / MIMI_CONFIG)


def crop_samples(seconds: float, frame_rate: float, frame_size: int) -> int:
    """`seconds` in samples, rounded down to whole codec frames (at least one)."""
    frames = int(seconds * frame_rate)
    if frames < 1:
        raise ValueError(f"duration_sec must be at least one codec frame (1 / {frame_rate} s), got {seconds}")
    return frames * frame_size


def main(
    cfg: CodecTrainConfig,
    until_step: int | None = None,
    progress: bool = True,
    data: AudioCrops | None = None,
    teacher: Teacher | None = None,
) -> RunResult:
    """Train as `cfg` says; `data` replaces the manifest's audio and `teacher` the config's (tests)."""
    d = init_distributed(cfg.device)
    try:
        run_dir = prepare_run_dir(cfg.run_dir, cfg.overwrite_run_dir, cfg.to_dict(), d)
        trainer = build_trainer(cfg, d.device, teacher, d)
        mimi = trainer.generator.mimi
        if data is None:
            crop = crop_samples(cfg.duration_sec, mimi.frame_rate, mimi.frame_size)
            data = AudioCrops.from_manifest(cfg.data.train_data, mimi.sample_rate, crop)
        return run(CodecTask(trainer, data, cfg, d), run_options(cfg, run_dir, until_step, progress), d)
    finally:
        close_distributed()
