"""Which items a step reads: the same however the global batch is split over processes,
resumable from (epoch, cursor), and epochs told to the dataset (for its crops)."""

import torch

from moshi.lm.config import KyutaiConfig
from moshi.train.batches import Batches, stack
from moshi.train.release import kyutai_config_dict


class Numbered:
    """Item i is [[i]]; remembers the epochs it was told."""

    def __init__(self, n: int):
        self.n, self.epochs = n, []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor([[i]])

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)


def ids(batch: torch.Tensor) -> list[int]:
    return batch[:, 0, 0].tolist()


def test_split_over_processes_reads_the_same_items():
    one = Batches(Numbered(10), 4, 0, 1, seed=3, shuffle=True)
    two = [Batches(Numbered(10), 2, r, 2, seed=3, shuffle=True) for r in range(2)]
    for _ in range(7):  # across epochs
        assert ids(one.next()) == ids(two[0].next()) + ids(two[1].next())
    seen = Batches(Numbered(10), 10, 0, 1, seed=3, shuffle=True)
    assert sorted(ids(seen.next())) == list(range(10))  # an epoch is a permutation


def test_position_resumes_and_epochs_reach_the_dataset():
    data = Numbered(5)
    a = Batches(data, 2, 0, 1, seed=0, shuffle=True)
    for _ in range(3):
        a.next()
    assert data.epochs == [0, 1] and a.state_dict() == {"epoch": 1, "cursor": 1}
    b = Batches(Numbered(5), 2, 0, 1, seed=0, shuffle=True)
    b.load_state_dict(a.state_dict())
    assert [ids(b.next()) for _ in range(4)] == [ids(a.next()) for _ in range(4)]
    quiet = Numbered(5)
    Batches(quiet, 2, 0, 1, seed=0, shuffle=False, set_epoch=False).next()
    assert quiet.epochs == []


def test_stack_pads_with_undefined():
    out = stack([torch.ones(2, 3, dtype=torch.long), torch.zeros(2, 1, dtype=torch.long)])
    assert out.tolist() == [[[1, 1, 1], [1, 1, 1]], [[0, -1, -1], [0, -1, -1]]]


def test_the_7b_defaults_written_as_a_config_read_back():
    data = kyutai_config_dict(KyutaiConfig())
    assert KyutaiConfig.parse(data).lm == KyutaiConfig().lm
