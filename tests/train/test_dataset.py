"""LMDataset: items laid out as LMModel.forward takes them for each task, crops, the codes
cache, and bad files skipped with one message each."""

import logging
import shutil
from dataclasses import replace

import pytest
import torch

from moshi.codec import load_mimi
from moshi.lm.config import KyutaiConfig
from moshi.lm.model import LMModel
from moshi.train.alignments import Entry
from moshi.train.codes_cache import CodesCache, codec_fingerprint
from moshi.train.dataset import LMDataset, collate, task_layout
from moshi.train.distributed import Dist
from moshi.train.lm_task import LMTrainer, LMTrainOptions
from moshi.train.loss import LossOptions, loss_parts, loss_weights
from moshi.train.text_stream import text_stream
from tests.support.fixtures import FIXTURES, config_of
from tests.support.train import manifest

TOKENIZER = FIXTURES / "tiny_spm_100.model"


def make(tmp_path, paths, mimi, config, task="dialogue", seconds=0.8, **kw) -> LMDataset:
    return LMDataset(
        manifest(tmp_path, paths),
        mimi,
        TOKENIZER,
        config,
        task=task,
        duration_sec=seconds,
        cache_dir=tmp_path / "cache",
        **kw,
    )


@pytest.mark.parametrize(
    "task, channels, rows, delay",
    [("dialogue", 2, 17, 0.0), ("stt", 1, 33, -0.24 - 0.08), ("tts", 1, 9, 0.32)],  # stt: + a step
)
def test_items_are_what_the_model_reads(tmp_path, data, mimi, configs, task, channels, rows, delay):
    words = (("hi", 0.1, 0.3), ("you", 0.5, 0.9, "SPEAKER_OTHER"), ("so", 1.3, 1.5))
    paths = [data("a", 2.5, channels, words), data("b", 1.0, channels, seed=1)]
    ds = make(tmp_path, paths, mimi, configs[task], task, random_crop=False)
    tail = 13 if task == "stt" else 0  # speech-to-text's files go on in 1 s of silence
    # 32 frames -> 3 crops of 10, 13 frames -> 1 (stt: 45 -> 4, 26 -> 2)
    assert len(ds) == (4 + 2 if tail else 3 + 1)
    assert ds.layout.delay_s == pytest.approx(delay) and not ds.skipped
    items = [ds[i] for i in range(len(ds))]
    assert all(x.shape == (rows, 10) and x.dtype == torch.int64 for x in items)
    codes = ds.cache.codes(paths[0])  # [C, K, 32 + tail]
    assert codes.shape == (channels, (rows - 1) // channels, 32 + tail)
    for n, start in enumerate((0, 10, 20)):
        assert torch.equal(items[n][1:], codes[..., start : start + 10].reshape(rows - 1, 10))
        keep = task == "dialogue"  # Moshi's words only; one speaker's file otherwise
        text = text_stream(
            [w for w in ds.files[0].words if w.speaker == "SPEAKER_MAIN" or not keep],
            ds.tokenizer,
            10,
            delay_s=ds.layout.delay_s,
            offset_s=start / 12.5,
            padding_before_start=task == "stt",
        )
        assert torch.equal(items[n][0], text)
    batch = collate(items[:4])
    assert batch.shape == (4, rows, 10)
    model = LMModel(configs[task].lm)  # the model takes the batch as it is
    out = model(batch, model.prepare_conditions([{}] * 4) if model.has_conditions else None)
    assert out.text_logits.shape[2] == 10


def test_the_text_row_pins_each_task_s_delay(tmp_path, data, mimi, configs):
    words = (("hi", 0.45, 0.6),)  # frame 5.625
    tok = make(tmp_path, [data("a", 1.0, 2, words)], mimi, configs["dialogue"]).tokenizer
    hi = tok.encode("hi")
    expect = {
        "dialogue": [3, 3, 3, 3, 0, *hi],  # at its audio frame
        # 0.24 s + the step's lag = 4 frames behind; before the file's start padding (not -1)
        "stt": [3, 3, 3, 3, 3, 3, 3, 3, 0, *hi],
        "tts": [0, *hi],  # 0.32 s = 4 frames ahead
    }
    for task, head in expect.items():
        paths = [data(task, 1.0, 2 if task == "dialogue" else 1, words)]
        ds = make(tmp_path, paths, mimi, configs[task], task, seconds=1.0, random_crop=False)
        assert ds[0][0, : len(head)].tolist() == head
        assert set(ds[0][0, len(head) :].tolist()) == {3}


def test_a_dialogue_model_can_write_down_the_users_words_too(tmp_path, data, mimi, configs):
    # dialogue_config.user_text_delay_seconds: the user's words, that plus one frame late,
    # between EOS and BOS; Moshi's at their audio
    heard = KyutaiConfig.parse(
        config_of(FIXTURES / "moshi_lm_tiny", dialogue_config={"user_text_delay_seconds": 0.16})
    )
    assert task_layout("dialogue", heard).user_delay_s == pytest.approx(-0.24)
    assert task_layout("dialogue", configs["dialogue"]).user_delay_s is None
    words = (("no", 0.1, 0.2, "SPEAKER_USER"), ("hi", 0.6, 0.7))  # "no" at 0.34 s: frame 4.25
    ds = make(tmp_path, [data("heard", 1.0, 2, words)], mimi, heard, seconds=1.0, random_crop=False)
    no, hi = ds.tokenizer.encode("no"), ds.tokenizer.encode("hi")
    # "hi" (frame 7.5) queues after the last token of "no"
    assert ds[0][0].tolist() == [3, 3, 3, 0, 2, *no, 1, *hi, 3]


def test_training_reports_how_well_it_predicts_moshis_replies(tmp_path, data, mimi):
    # the turn markers of a model that writes down the user's words tell where Moshi replies
    heard = KyutaiConfig.parse(
        config_of(FIXTURES / "moshi_lm_tiny", dialogue_config={"user_text_delay_seconds": 0.16})
    )
    words = (("no", 0.1, 0.2, "SPEAKER_USER"), ("hi", 0.6, 0.7))
    ds = make(tmp_path, [data("heard", 1.0, 2, words)], mimi, heard, seconds=1.0, random_crop=False)
    turns = (ds.tokenizer.moshi_turn_id, ds.tokenizer.user_turn_id)
    torch.manual_seed(0)
    for reply_weight in (1.0, 20.0):
        options = LMTrainOptions(
            max_steps=4, batch_size=1, loss=LossOptions(turn_ids=turns, reply_weight=reply_weight)
        )
        trainer = LMTrainer(LMModel(heard.lm), ds, options, Dist(), eval_data=ds)
        metrics = trainer.train_step()
        assert metrics["reply_tokens"] == len(ds.tokenizer.encode("hi"))  # "hi" after BOS
        assert 0.0 <= metrics["reply_accuracy"] <= 1.0 and metrics["reply_loss"] > 0
        assert metrics["replies"] == 1 and metrics["replies_exact"] in (0.0, 1.0)
        assert set(trainer.evaluate()) >= {"reply_loss", "reply_accuracy"}
    untold = LMTrainer(LMModel(heard.lm), ds, LMTrainOptions(max_steps=1, batch_size=1), Dist())
    assert "reply_loss" not in untold.train_step()  # no turn markers given: no replies known


def test_a_text_only_item_is_the_text_row_alone(tmp_path, data, mimi, configs):
    # a manifest line naming the alignments file: the same text row, every audio row the zero token
    heard = KyutaiConfig.parse(
        config_of(FIXTURES / "moshi_lm_tiny", dialogue_config={"user_text_delay_seconds": 0.16})
    )
    wav = data("heard", 1.0, 2, (("no", 0.1, 0.2, "SPEAKER_USER"), ("hi", 0.6, 0.7)))
    ds = make(tmp_path, [wav, wav.with_suffix(".json")], mimi, heard, seconds=1.0, random_crop=False)
    with_audio, text_only = ds[0], ds[1]
    assert (with_audio[1:] >= 0).all() and (text_only[1:] == -1).all()
    assert text_only[0].tolist() == with_audio[0].tolist()
    codes = collate([text_only])  # the model learns from its text alone
    w = loss_weights(codes, heard.lm, LossOptions())
    with torch.no_grad():
        parts = loss_parts(LMModel(heard.lm)(codes), codes, w)
    assert float(w.audio.sum()) == 0 and float(parts.semantic + parts.acoustic) == 0
    assert w.text.sum() > 0 and torch.isfinite(parts.text) and parts.text > 0
    stt = make(tmp_path, [wav.with_suffix(".json")], mimi, configs["stt"], task="stt")
    assert len(stt.files) == 0 and stt.skipped == {"text-only item": 1}  # the text of no audio


def test_speech_to_text_hears_the_silence_after_a_file(tmp_path, data, mimi, configs):
    """The file's own codes are as without the tail (a causal codec), the tail's are those
    of silence after it, and the last word's delayed text lands in the tail, then padding."""
    words = (("hi", 0.2, 0.4), ("so", 0.7, 0.95))  # "so": at 0.7 s, its text 0.32 s later
    path = data("end", 1.0, 1, words)
    ds = make(tmp_path, [path], mimi, configs["stt"], "stt", seconds=2.0, random_crop=False)
    item = ds[0]  # 13 file frames + 13 of silence, a crop of 25
    alone = CodesCache(tmp_path / "plain", mimi, item.shape[0] - 1).codes(path)[0]  # [K, 13]
    # (the last frame's deepest codebooks may round otherwise: it is encoded in another chunk)
    assert torch.equal(item[1:, :12], alone[:, :12]) and item[1, 12] == alone[0, 12]
    assert (item[1:, 13:] >= 0).all()
    text = item[0].tolist()
    so = ds.tokenizer.encode("so")
    # "so" (its pieces from frame 12) runs into the tail, which a file alone would cut off
    assert -1 not in text and text[12 : 12 + len(so)] == so and 12 + len(so) > 13
    assert set(text[12 + len(so) :]) == {3}


def test_a_short_file_is_padded_with_zero_tokens(tmp_path, data, mimi, configs):
    ds = make(tmp_path, [data("short", 0.5)], mimi, configs["dialogue"], seconds=1.0)
    item = ds[0]  # 0.5 s = 7 frames (the last one part silence), crop of 13
    assert (item[:, :7] >= 0).all() and (item[:, 7:] == -1).all()


def test_crops_are_reproducible_per_seed_and_epoch(tmp_path, data, mimi, configs):
    paths = [data("long", 4.0)]  # 50 frames: 5 items, crop starts in [0, 40]
    a = make(tmp_path, paths, mimi, configs["dialogue"], seed=3)
    b = make(tmp_path, paths, mimi, configs["dialogue"], seed=3)
    first = [a[i] for i in range(len(a))]
    assert all(torch.equal(x, b[i]) for i, x in enumerate(first))
    a.set_epoch(1)
    assert not all(torch.equal(x, a[i]) for i, x in enumerate(first))
    c = make(tmp_path, paths, mimi, configs["dialogue"], seed=4)
    assert not all(torch.equal(x, c[i]) for i, x in enumerate(first))
    with pytest.raises(IndexError):
        a[len(a)]


def test_codes_are_encoded_once_and_kept_across_runs(tmp_path, data, mimi, configs, monkeypatch):
    calls = []
    encode = mimi.encode
    monkeypatch.setattr(mimi, "encode", lambda pcm: calls.append(pcm.shape) or encode(pcm))
    paths = [data("a", 1.0), data("b", 1.0, seed=1)]
    first = make(tmp_path, paths, mimi, configs["dialogue"])
    assert first.cache.encoded == 2 and calls
    calls.clear()
    again = make(tmp_path, paths, mimi, configs["dialogue"])
    assert again.cache.encoded == 0 and not calls  # the codec is not called at all
    assert all(torch.equal(first[i], again[i]) for i in range(len(first)))
    copy = paths[0].with_name("copy.wav")
    shutil.copy(paths[0], copy)  # same content, another name: a hit
    assert make(tmp_path, [copy], mimi, configs["dialogue"]).cache.encoded == 0
    other = CodesCache(tmp_path / "cache", mimi, 4)  # another number of codebooks: a miss
    assert other.codes(paths[0]).shape[1] == 4 and other.encoded == 1
    shutil.rmtree(tmp_path / "cache")  # safe to delete: encoded again
    assert make(tmp_path, paths, mimi, configs["dialogue"]).cache.encoded == 2


def test_another_codec_does_not_share_codes(tmp_path, mimi):
    d = FIXTURES / "mimi_tiny"
    other = load_mimi(d / "weights.safetensors", d / "config.json")
    assert codec_fingerprint(other) == codec_fingerprint(mimi)
    with torch.no_grad():
        next(other.decoder.parameters())[0].add_(1e-3)  # a retrained decoder: the same codes
    other.config = replace(other.config, decoder_n_filters=2 * other.config.n_filters)
    assert codec_fingerprint(other) == codec_fingerprint(mimi)
    for module in other.encoding.values():  # a retrained encoding module: another cache
        weight = next(module.parameters())
        kept = weight.detach().clone()
        with torch.no_grad():
            weight.view(-1)[0].add_(1e-3)
        assert codec_fingerprint(other) != codec_fingerprint(mimi)
        with torch.no_grad():
            weight.copy_(kept)
        assert codec_fingerprint(other) == codec_fingerprint(mimi)
    with torch.no_grad():
        next(other.encoder.parameters()).view(-1)[0].add_(1e-3)
    assert CodesCache(tmp_path, other, 8).folder != CodesCache(tmp_path, mimi, 8).folder


def test_fingerprints_outlive_new_optional_config_fields():
    """The tiny codec's fingerprint since stop 25 (what makes the codes only): caches made
    since stay valid, and config fields added later at None keep it."""
    d = FIXTURES / "mimi_tiny"
    mimi = load_mimi(d / "weights.safetensors", d / "config.json")
    assert codec_fingerprint(mimi) == "24ce529620895833"
    mimi.config = replace(mimi.config, total_codebooks=mimi.config.total_codebooks - 1)  # codes depend on it
    assert codec_fingerprint(mimi) != "24ce529620895833"


def test_one_channel_of_a_dialogue_is_a_mono_item(tmp_path, data, mimi, configs):
    # speech-to-text learns from the user's channel (the right), text-to-speech from Moshi's,
    # each with its speaker's words, on the dialogue's own codes (no silence encoded after)
    words = (("hi", 0.1, 0.3), ("you", 0.5, 0.9, "SPEAKER_USER"), ("so", 1.3, 1.5))
    path = data("d", 2.0, 2, words)
    make(tmp_path, [path], mimi, configs["dialogue"])  # encodes the file's 8 codebooks
    for task, channel, said in (("stt", 1, ["you"]), ("tts", 0, ["hi", "so"])):
        entries = [Entry(path, 2.0, channel)]
        ds = LMDataset(entries, mimi, TOKENIZER, configs[task], task=task, duration_sec=2.0,
                       cache_dir=tmp_path / "cache", random_crop=False)  # fmt: skip
        assert len(ds) == 1 and not ds.skipped
        assert ds.stereo_cache.encoded == (task == "stt")  # tts reads the dialogue's 8 (stt: 32)
        stereo = ds.stereo_cache.codes(path)  # [2, K, 25]
        assert [w.text for w in ds.files[0].words] == said
        item = ds[0]
        assert torch.equal(item[1:], stereo[channel, : item.shape[0] - 1])
        text = text_stream(list(ds.files[0].words), ds.tokenizer, 25, delay_s=ds.layout.delay_s,
                           padding_before_start=task == "stt")  # fmt: skip
        assert torch.equal(item[0], text) and len(set(text.tolist())) > 2
    mono = data("mono", 1.0, 1)
    wrong = [Entry(mono, 1.0, 1)]
    ds = LMDataset(
        wrong, mimi, TOKENIZER, configs["stt"], task="stt", duration_sec=1.0, cache_dir=tmp_path / "c"
    )
    assert dict(ds.skipped) == {"not stereo": 1}
    ds = LMDataset(
        [Entry(path, 2.0, 1)], mimi, TOKENIZER, configs["dialogue"], duration_sec=1.0, cache_dir=tmp_path
    )
    assert dict(ds.skipped) == {"channel item": 1}  # a dialogue item is both channels


def test_bad_files_are_skipped_counted_and_named(tmp_path, data, mimi, configs, caplog):
    good = data("good", 1.0)
    resampled = data("at_16k", 1.0, rate=16000)  # another sample rate: resampled, kept
    no_json = data("no_json", words=None)
    mono = data("mono", channels=1)
    outside = data("outside", 1.0, words=(("late", 0.5, 3.0),))
    garbage = data("garbage")
    garbage.write_bytes(b"not audio at all")
    broken = data("broken")
    broken.with_suffix(".json").write_text('{"alignments": [["x", "y"]]}')
    paths = [good, no_json, mono, outside, garbage, broken, resampled]
    with caplog.at_level(logging.WARNING, logger="moshi.train.dataset"):
        ds = make(tmp_path, paths, mimi, configs["dialogue"])
    assert [f.path.name for f in ds.files] == ["good.wav", "at_16k.wav"]
    assert dict(ds.skipped) == {
        "missing alignments": 1,
        "not stereo": 1,
        "word outside the audio": 1,
        "unreadable audio": 1,
        "bad alignments": 1,
    }
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5
    for name, what in [
        ("no_json.json", "missing alignments"),
        ("mono.wav", "needs stereo audio, got 1 channel"),
        ("outside.json", "'late' at [0.5, 3] s lies outside the audio"),
        ("garbage.wav", "not an audio file"),
        ("broken.json", "alignment 0 is not [word, [start, end], speaker]"),
    ]:
        assert any(name in line and what in line for line in lines), (name, lines)
    assert all("\n" not in line for line in lines)


def test_tasks_must_fit_the_model(tmp_path, mimi, configs):
    small = replace(configs["stt"].lm, text_card=50)
    with pytest.raises(ValueError, match="reads 50 text tokens and 64 audio codes, got a tokenizer of 100"):
        LMDataset([], mimi, TOKENIZER, small, task="stt", duration_sec=1, cache_dir=tmp_path, delay_s=-0.5)
    with pytest.raises(ValueError, match="dialogue needs a model with n_q = 2 \\* dep_q"):
        task_layout("dialogue", configs["stt"])
    with pytest.raises(ValueError, match="stt needs a model that generates no audio"):
        task_layout("stt", configs["dialogue"])
    with pytest.raises(ValueError, match="audio_delay_seconds"):
        task_layout("stt", configs["stt"].lm)
    assert task_layout("stt", configs["stt"].lm, delay_s=-1.0).delay_s == -1.0
    with pytest.raises(ValueError, match="task must be one of dialogue, stt, tts"):
        task_layout("asr", configs["stt"])
