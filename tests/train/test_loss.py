"""The LM loss (moshi-finetune's): which targets count and with what weight, against a
hand computation; and gradient checkpointing changes no number."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from moshi.lm.config import LMConfig
from moshi.lm.layers import ZERO_TOKEN
from moshi.lm.model import LMOutput
from moshi.train.distributed import Dist
from moshi.train.lm_task import LMTrainer, LMTrainOptions, drop_inputs
from moshi.train.loss import LossOptions, loss_parts, loss_weights, reply_tokens, total_loss
from tests.support.train import PatternDataset, tiny_lm

CFG = LMConfig(
    dim=8, num_heads=1, num_layers=1, text_card=10, card=6, n_q=4, dep_q=2, delays=(0, 0, 1, 0, 1),
    depformer_dim=8, depformer_num_heads=1, depformer_num_layers=1,
)  # fmt: skip


def test_weights_follow_padding_codebook_and_delays():
    codes = torch.tensor(
        [[[3, 7, 0, 5, -1], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]]]
    )
    w = loss_weights(codes, CFG, LossOptions(text_padding_weight=0.5, first_codebook_weight_multiplier=100.0))
    torch.testing.assert_close(w.text, torch.tensor([[0.5, 1.0, 0.5, 1.0, 0.0]]))  # pad 3, end-pad 0, -1
    torch.testing.assert_close(w.audio[0, 0], torch.full((5,), 100.0))  # semantic, delay 0
    torch.testing.assert_close(w.audio[0, 1], torch.tensor([1.0, 1, 1, 1, 0]))  # delay 1: last undefined
    assert w.audio.shape == (1, 2, 5)  # the user's streams (3, 4) are inputs only
    sums = w.sums()
    torch.testing.assert_close(
        sums, torch.tensor([3.0, 504.0, 500.0, 4.0, 13.0, 0.0, 0.0])
    )  # no turn markers


def test_weights_match_the_models_validity_masks():
    model = tiny_lm()
    codes = PatternDataset(model, n=8, T=10)[7][None]  # its last 3 steps are -1
    out = model(codes)
    w = loss_weights(codes, model.config, LossOptions())
    dep_q = model.config.dep_q
    torch.testing.assert_close(w.audio > 0, out.mask & (codes[:, 1 : 1 + dep_q] >= 0))
    torch.testing.assert_close(w.text > 0, out.text_mask[:, 0] & (codes[:, 0] >= 0))


def test_loss_is_the_weighted_mean_of_the_cross_entropies():
    g = torch.Generator().manual_seed(0)
    B, T = 2, 5
    codes = torch.randint(0, 6, (B, 5, T), generator=g)
    codes[0, 0, 1], codes[1, 0, 2], codes[1, 1, 4] = (
        3,
        -1,
        -1,
    )  # a padding text, a missing text, a missing code
    out = LMOutput(
        text_logits=torch.randn(B, 1, T, 10, generator=g),
        logits=torch.randn(B, 2, T, 6, generator=g),
        text_mask=torch.ones(B, 1, T, dtype=torch.bool),
        mask=torch.tensor([[True] * T, [True] * (T - 1) + [False]]).expand(B, 2, T),  # delays 0, 1
    )
    options = LossOptions(text_padding_weight=0.5, first_codebook_weight_multiplier=100.0)
    w = loss_weights(codes, CFG, options)
    loss = total_loss(loss_parts(out, codes, w), w.sums(), options)
    # By hand, target by target.
    text_num = text_den = audio_num = audio_den = 0.0
    for b in range(B):
        for t in range(T):
            y = int(codes[b, 0, t])
            if y >= 0:
                wt = 0.5 if y in (0, 3) else 1.0
                text_num += wt * F.cross_entropy(out.text_logits[b, 0, t], torch.tensor(y)).item()
                text_den += wt
            for k, delay in enumerate((0, 1)):
                y = int(codes[b, 1 + k, t])
                if y >= 0 and t < T - delay:
                    wa = 100.0 if k == 0 else 1.0
                    audio_num += wa * F.cross_entropy(out.logits[b, k, t], torch.tensor(y)).item()
                    audio_den += wa
    expected = text_num / text_den + audio_num / audio_den
    torch.testing.assert_close(loss, torch.tensor(expected), rtol=1e-6, atol=1e-6)
    # text_loss_weight scales the text term alone.
    weighted = total_loss(loss_parts(out, codes, w), w.sums(), replace(options, text_loss_weight=3.0))
    expected = 3.0 * text_num / text_den + audio_num / audio_den
    torch.testing.assert_close(weighted, torch.tensor(expected), rtol=1e-6, atol=1e-6)


def test_replies_run_from_moshis_marker_to_the_users():
    # 1: Moshi's turn marker, 2: the user's; a crop starting mid-turn does not know whose it is
    text = torch.tensor([[5, 3, 1, 6, 3, 7, 2, 8, 1, 9], [1, 4, 4, 2, 1, 1, 4, -1, 2, 1]])
    expected = [[0, 0, 0, 1, 1, 1, 0, 0, 0, 2], [0, 1, 1, 0, 0, 0, 3, 3, 0, 0]]  # the k-th reply: k
    assert reply_tokens(text, 1, 2).tolist() == expected
    codes = torch.zeros(2, 5, 10, dtype=torch.long)
    codes[:, 0] = text
    w = loss_weights(codes, CFG, LossOptions(turn_ids=(1, 2)))  # padding (3, 0) and -1: not replies
    assert w.reply.tolist() == [[0, 0, 0, 1, 0, 1, 0, 0, 0, 2], [0, 1, 1, 0, 0, 0, 3, 0, 0, 0]]
    assert w.sums()[5:].tolist() == [6, 4]  # reply tokens, replies


def test_reply_weight_scales_the_reply_tokens_in_the_text_term():
    g = torch.Generator().manual_seed(1)
    B, T = 2, 8
    codes = torch.randint(4, 6, (B, 5, T), generator=g)
    codes[:, 0] = torch.tensor([[1, 4, 3, 5, 2, 4, 4, 1], [4, 2, 5, 1, 5, 5, 3, 2]])
    out = LMOutput(
        text_logits=torch.randn(B, 1, T, 10, generator=g),
        logits=torch.randn(B, 2, T, 6, generator=g),
        text_mask=torch.ones(B, 1, T, dtype=torch.bool),
        mask=torch.ones(B, 2, T, dtype=torch.bool),
    )
    options = LossOptions(text_padding_weight=0.5, first_codebook_weight_multiplier=1.0, turn_ids=(1, 2))
    w = loss_weights(codes, CFG, options)
    parts = loss_parts(out, codes, w)
    ce = F.cross_entropy(out.text_logits[:, 0].reshape(-1, 10), codes[:, 0].reshape(-1), reduction="none")
    reply = (w.reply > 0).reshape(-1).float()
    assert w.reply.tolist() == [[0, 1, 0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 0, 0]]
    torch.testing.assert_close(parts.reply, (ce * reply).sum())
    hits = (out.text_logits[:, 0].argmax(-1).reshape(-1) == codes[:, 0].reshape(-1)).float()
    assert float(parts.reply_correct) == float((hits * reply).sum())
    exact = [bool(hits[1] and hits[3]), bool(hits[12] and hits[13])]  # each row's one reply
    assert float(parts.replies_correct) == sum(exact)
    out.text_logits[0, 0, 1, 4] = out.text_logits[1, 0, 4:6, 5] = 1e3  # argmax right everywhere
    assert float(loss_parts(out, codes, w).replies_correct) == 2 - (not hits[3])
    base, weighted = (total_loss(parts, w.sums(), replace(options, reply_weight=r)) for r in (1.0, 10.0))
    audio = (parts.semantic + parts.acoustic) / w.sums()[1]
    wt = w.text.reshape(-1) + 9.0 * reply  # the reply tokens' weight 1 -> 10, the rest's unchanged
    torch.testing.assert_close(weighted - audio, (ce * wt).sum() / wt.sum())
    torch.testing.assert_close(base - audio, (ce * w.text.reshape(-1)).sum() / w.text.sum())


def test_gradient_checkpointing_changes_no_number():
    results = []
    for recompute in (False, True):
        torch.manual_seed(0)
        model = tiny_lm()
        options = LMTrainOptions(max_steps=2, lr=1e-2, batch_size=2, gradient_checkpointing=recompute)
        trainer = LMTrainer(model, PatternDataset(model, n=4, T=10), options, Dist())
        losses = [trainer.train_step()["loss"] for _ in range(2)]
        results.append((losses, model.text_linear.weight.detach().clone()))
    (a, wa), (b, wb) = results
    torch.testing.assert_close(torch.tensor(b), torch.tensor(a), rtol=0, atol=1e-6)
    torch.testing.assert_close(wb, wa, rtol=0, atol=1e-6)


def test_input_dropout_zeroes_only_the_streams_the_model_reads():
    torch.manual_seed(0)
    codes = torch.randint(0, 50, (4, 1 + 16, 200))
    out = drop_inputs(codes, dep_q=8, p=0.25)
    assert torch.equal(out[:, :9], codes[:, :9])  # text and the generated codebooks: untouched
    read = out[:, 9:]
    dropped = read == ZERO_TOKEN
    assert torch.equal(read[~dropped], codes[:, 9:][~dropped])
    assert 0.2 < dropped.float().mean().item() < 0.3
    assert torch.equal(drop_inputs(codes, dep_q=16, p=0.5), codes)  # nothing only read


def test_input_dropout_trains_but_never_evaluates():
    model = tiny_lm()  # dep_q < n_q: some audio streams are only read
    assert model.config.dep_q < model.config.n_q
    data = PatternDataset(model, n=4, T=10)
    losses = []
    for p in (0.0, 0.5):
        torch.manual_seed(0)
        model = tiny_lm()
        trainer = LMTrainer(model, data, LMTrainOptions(max_steps=2, batch_size=2, input_dropout=p), Dist())
        losses.append((trainer.evaluate()["loss"], trainer.train_step()["loss"]))
    (eval0, train0), (eval1, train1) = losses
    assert eval1 == pytest.approx(eval0, abs=1e-6)
    assert abs(train1 - train0) > 1e-4
