"""Two CPU processes (gloo) x batch b train exactly as one process x batch 2b (the loss is
normalized over the global batch; see moshi/train/lm_task.py), and a checkpoint written by
two processes resumes in one."""

import json
import os
import socket

import torch
import torch.multiprocessing as mp

from moshi.train.config import TrainConfig
from moshi.train.lm import main
from tests.train.conftest import PatternDataset, tiny_config, tiny_lm

TOLERANCE = 1e-5  # float rounding of the gradient all-reduce, over 6 Adam steps


def _worker(rank: int, world: int, port: int, config: dict) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    main(
        TrainConfig.from_dict(config),
        until_step=3,
        progress=False,
        datasets=(PatternDataset(tiny_lm()), None),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def losses(run_dir) -> list[float]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x["loss"] for x in lines if x["split"] == "train"]


def test_two_processes_equal_one_with_twice_the_batch(tmp_path):
    one = tiny_config(tmp_path / "one", batch_size=4)
    main(TrainConfig.from_dict(one), progress=False, datasets=(PatternDataset(tiny_lm()), None))
    two = tiny_config(tmp_path / "two", batch_size=2)
    mp.spawn(_worker, args=(2, _free_port(), two), nprocs=2, join=True)
    assert len(losses(tmp_path / "two")) == 3
    # The 2-process checkpoint (step 3) resumes in one process, with the same global batch.
    resumed = main(
        TrainConfig.from_dict({**two, "batch_size": 4}),
        progress=False,
        datasets=(PatternDataset(tiny_lm()), None),
    )
    assert resumed.step == 6
    a, b = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert a[-1] < a[0] - 0.3  # it learns
    torch.testing.assert_close(torch.tensor(b), torch.tensor(a), rtol=0, atol=TOLERANCE)
