"""Each tiny LM (dialogue, speech-to-text, text-to-speech) overfits a handful of patterned
sequences: the loss falls below a stated value within N steps (one thread, seconds)."""

import pytest
import torch

from moshi.train.distributed import Dist
from moshi.train.lm_task import LMTrainer, LMTrainOptions, freeze_untrained
from tests.support.train import PatternDataset, tiny_lm

CASES = {  # fixture model: (steps, the loss to get below; it starts near 9, 4.6 for STT)
    "moshi_lm_tiny": (60, 1.5),
    "stt_lm_tiny": (40, 2.5),
    "tts_lm_tiny": (40, 3.5),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tiny_model_overfits(name):
    steps, target = CASES[name]
    torch.manual_seed(0)
    model = tiny_lm(name)
    freeze_untrained(model)
    options = LMTrainOptions(max_steps=steps, lr=1e-2, batch_size=4, pct_start=0.1, weight_decay=0.0)
    trainer = LMTrainer(model, PatternDataset(model), options, Dist())
    first = trainer.train_step()["loss"]
    for _ in range(steps - 2):
        trainer.train_step()
    last = trainer.train_step()
    assert last["loss"] < target < first, (first, last)
    if model.config.dep_q:
        assert last["semantic_loss"] < 0.6 and last["acoustic_loss"] < 0.6
