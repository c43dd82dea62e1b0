"""Training on the model's own audio: the temporal transformer reads a history in place of
the codes (the depformer and the targets keep the codes), and `own_samples` draws that
history's generated streams from the model's own predictions."""

import pytest
import torch
import yaml

from moshi.cli.main import main as moshi_main
from moshi.train.distributed import Dist
from moshi.train.lm_task import LMTrainer, LMTrainOptions, own_samples
from moshi.train.loss import LossOptions
from tests.support.train import PatternDataset, tiny_config, tiny_lm


def test_own_samples_replace_only_defined_generated_tokens():
    torch.manual_seed(0)
    B, n_q, dep_q, T, card = 3, 4, 2, 400, 6
    codes = torch.randint(0, card - 1, (B, 1 + n_q, T))  # never the token the model predicts
    codes[:, :, -5:] = -1  # undefined frames stay undefined
    logits = torch.full((B, dep_q, T, card), -1e4)
    logits[..., card - 1] = 0.0  # the model is sure of one token...
    mask = torch.ones(B, dep_q, T, dtype=torch.bool)
    mask[:, 1, -10:] = False  # ...except where it predicts nothing (the delays' edges)
    out = own_samples(codes, logits, mask, p=0.5, temp=0.3)
    assert torch.equal(out[:, 0], codes[:, 0]) and torch.equal(out[:, 1 + dep_q :], codes[:, 1 + dep_q :])
    changed = out != codes
    own = changed[:, 1 : 1 + dep_q]
    assert torch.all(out[:, 1 : 1 + dep_q][own] == card - 1)  # what the model predicted
    assert not own[~mask].any() and not own[codes[:, 1 : 1 + dep_q] < 0].any()
    share = own.sum() / (mask & (codes[:, 1 : 1 + dep_q] >= 0)).sum()
    assert 0.45 < share.item() < 0.55
    assert torch.equal(own_samples(codes, logits, mask, p=0.0, temp=0.3), codes)
    greedy = own_samples(codes, logits, mask, p=1.0, temp=0.0)[:, 1 : 1 + dep_q]
    assert torch.all(greedy[mask & (codes[:, 1 : 1 + dep_q] >= 0)] == card - 1)
    with pytest.raises(ValueError, match="must match codes"):
        own_samples(codes, logits[:, :, :-1], mask, p=0.5, temp=0.3)


def test_history_is_what_the_temporal_transformer_reads():
    model = tiny_lm().eval()
    cfg = model.config
    codes = PatternDataset(model, n=2, T=12).items[0][None]
    with torch.no_grad():
        plain = model(codes)
        same = model(codes, history=codes.clone())
        history = codes.clone()
        t = 5
        history[:, 1 : 1 + cfg.dep_q, t] = (history[:, 1 : 1 + cfg.dep_q, t] + 1) % cfg.card
        moved = model(codes, history=history)
    torch.testing.assert_close(same.text_logits, plain.text_logits)
    torch.testing.assert_close(same.logits, plain.logits)
    # Step s reads frames < s: text up to frame t is as before, later frames hear the change.
    torch.testing.assert_close(moved.text_logits[..., : t + 1, :], plain.text_logits[..., : t + 1, :])
    assert not torch.allclose(moved.text_logits[..., t + 1 :, :], plain.text_logits[..., t + 1 :, :])
    with pytest.raises(ValueError, match="history must have the codes' shape"):
        model(codes, history=codes[..., :-1])


def test_own_audio_trains_but_never_evaluates():
    data = PatternDataset(tiny_lm(), n=4, T=10)
    losses = []
    for p in (0.0, 1.0):
        torch.manual_seed(0)
        model = tiny_lm()
        options = LMTrainOptions(max_steps=2, batch_size=2, own_audio=p, own_audio_temp=1.0)
        trainer = LMTrainer(model, data, options, Dist())
        losses.append((trainer.evaluate()["loss"], trainer.train_step()["loss"]))
    (eval0, train0), (eval1, train1) = losses
    assert eval1 == pytest.approx(eval0, abs=1e-6)
    assert abs(train1 - train0) > 1e-4


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("own_audio", 1.5, "config.own_audio must be in [0, 1], got 1.5"),
     ("own_audio_temp", -1, "config.own_audio_temp must be >= 0, got -1.0")],
)  # fmt: skip
def test_bad_own_audio_is_one_line(tmp_path, capsys, key, value, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**tiny_config(tmp_path / "run"), key: value}))
    assert moshi_main(["train", "lm", str(path)]) == 1
    assert capsys.readouterr().err.strip() == f"moshi train: error: {message}"


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [("stt_lm_tiny", {"own_audio": 0.5}, "config.own_audio 0.5 needs a model that makes audio"),
     ("tts_lm_tiny", {"input_dropout": 0.1}, "config.input_dropout 0.1 needs audio the model reads"),
     ("moshi_lm_tiny", {"loss": LossOptions(reply_weight=10.0)}, "config.reply_weight 10.0 needs a")],
)  # fmt: skip
def test_the_trainer_refuses_options_that_would_do_nothing(name, options, message):
    model = tiny_lm(name)
    with pytest.raises(ValueError, match=message):
        LMTrainer(model, PatternDataset(model, n=2, T=10), LMTrainOptions(max_steps=1, **options), Dist())
