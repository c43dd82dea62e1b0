"""Two CPU processes (gloo) x batch b train as one process x batch 2b (the loss is
normalized over the global batch; see moshi/train/lm_task.py), replicated (DDP) or sharded
(FSDP2), and a checkpoint written by two processes resumes in one."""

import json

import torch
import torch.multiprocessing as mp

from moshi.train.config import TrainConfig
from moshi.train.lm import main
from tests.support.fixtures import free_port
from tests.support.train import PatternDataset, join_process_group, tiny_config, tiny_lm

TOLERANCE = 1e-5  # float rounding of the gradient all-reduce, over 6 Adam steps


def _worker(rank: int, world: int, port: int, configs: list[dict]) -> None:
    join_process_group(rank, world, port)
    torch.set_num_threads(1)
    for config in configs:  # one after the other (a process group each), in one spawn
        main(
            TrainConfig.from_dict(config),
            until_step=3,
            progress=False,
            datasets=(PatternDataset(tiny_lm()), None),
        )


def losses(run_dir) -> list[float]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x["loss"] for x in lines if x["split"] == "train"]


def test_two_processes_equal_one_with_twice_the_batch(tmp_path):
    one = tiny_config(tmp_path / "one", batch_size=4)
    main(TrainConfig.from_dict(one), progress=False, datasets=(PatternDataset(tiny_lm()), None))
    a = losses(tmp_path / "one")
    assert a[-1] < a[0] - 0.3  # it learns
    two = {kind: tiny_config(tmp_path / kind, batch_size=2, fsdp=kind == "fsdp") for kind in ("ddp", "fsdp")}
    mp.spawn(_worker, args=(2, free_port(), list(two.values())), nprocs=2, join=True)
    for kind, config in two.items():
        assert len(losses(tmp_path / kind)) == 3
        if kind == "fsdp":
            assert (tmp_path / kind / "checkpoints" / "checkpoint_000003" / "state" / "train_state").is_dir()
        # The 2-process checkpoint (step 3) resumes in one process, with the same global batch.
        config = {**config, "batch_size": 4, "fsdp": False}
        resumed = main(
            TrainConfig.from_dict(config), progress=False, datasets=(PatternDataset(tiny_lm()), None)
        )
        assert resumed.step == 6
        b = losses(tmp_path / kind)
        torch.testing.assert_close(torch.tensor(b), torch.tensor(a), rtol=0, atol=TOLERANCE, msg=kind)
