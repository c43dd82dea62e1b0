"""Mimi trains in two CPU processes (gloo, DDP): the codebooks' EMA statistics, their seeding
and dead-code re-seeding are collective (the processes' batches differ, and so do the
codebooks each one uses under quantizer dropout), and the checkpoint resumes in one process."""

import math

import torch
import torch.multiprocessing as mp

from moshi.codec import load_mimi
from moshi.train.codec import CodecTrainConfig, main
from moshi.train.codec.data import AudioCrops
from tests.support.fixtures import free_port
from tests.support.train import TINY_MIMI, join_process_group


def settings(run_dir) -> dict:
    return {
        "run_dir": str(run_dir),
        "model": {"mimi": TINY_MIMI},
        "discriminator": {"filters": 4, "max_filters": 8, "n_ffts": [256, 64]},
        "quantizer": {"quantizer_dropout": True, "dead_usage_ratio": 0.5},
        "batch_size": 2,
        "duration_sec": 0.16,
        "max_steps": 2,
        "log_freq": 1,
    }


def data() -> AudioCrops:
    t = torch.arange(24_000) / 24_000
    return AudioCrops([(0.3 * torch.sin(2 * math.pi * f * t)).numpy() for f in (150.0, 300.0, 600.0)], 3840)


def _worker(rank: int, world: int, port: int, config: dict) -> None:
    join_process_group(rank, world, port)
    torch.set_num_threads(1)
    main(CodecTrainConfig.from_dict(config), progress=False, data=data())


def test_two_processes_train_and_resume_in_one(tmp_path):
    config = settings(tmp_path / "run")
    mp.spawn(_worker, args=(2, free_port(), config), nprocs=2, join=True)
    folder = tmp_path / "run" / "checkpoints" / "checkpoint_000002" / "consolidated"
    mimi = load_mimi(folder / "mimi.safetensors", folder / "mimi_config.json", num_codebooks=4)
    assert all(cb.initialized for cb in mimi.quantizer.rvq_first.codebooks)
    resumed = main(CodecTrainConfig.from_dict({**config, "max_steps": 3}), progress=False, data=data())
    assert resumed.step == 3
