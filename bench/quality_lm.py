"""The LM bars of issue 13 against the corpus' held-out set (bench/quality.py's --stt, --tts
and --dialogue): each model is a folder with its config.json (a checkpoint's
`consolidated/`, whose config names the codec and the tokenizer).

- stt: word error rate on held-out audio (users' voices; Moshi's voice too), and the median
  distance between our word starts and the corpus' true ones (bars: <= 10 %, <= 100 ms);
- tts: held-out sentences spoken by our TTS; pocketsphinx's word error rate on them against
  its rate on the synthesiser's own rendering (bar: ratio <= 1.2), and our STT's (<= 10 %);
- dialogue: the user's channel of held-out dialogues through the real-time engine; each
  question's reply, transcribed from Moshi's channel by pocketsphinx, is correct (the
  grammar's check, bar: >= 80 %), starts soon after the question (median <= 1.0 s), and
  Moshi is quiet while the user speaks (>= 90 % of those frames); replies read from its text
  are also counted by the kind of question (arithmetic, color, ...). The same numbers on the
  corpus' own Moshi channel (`audio: "corpus"`) show what the measure gives the truth; with
  `--stt`, that model reads Moshi's channel too (`reply_correct_stt`). For a
  model that writes down the user's words, `reply_given_question`: the share of replies it
  knows when it hears right, teacher-forced (each dialogue's true streams through it once, the
  question's words written right; a reply counts when the argmax predicts every token of the
  corpus' reply, so a reply of another of the grammar's phrasings counts wrong: a floor). The
  gap between that and `reply_correct_text` is what its ear costs.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from moshi.audio import FRAME_RATE, SAMPLE_RATE, read_audio, read_audio_channels
from moshi.data.grammar import reply_is_correct
from moshi.eval.dialogue import MAIN_SPEAKER, questions, quiet_while_user_speaks, replies, user_speech
from moshi.eval.manifest import Entry, read_manifest
from moshi.eval.recogniser import Recogniser
from moshi.eval.wer import Errors, timed_word_errors, word_errors
from moshi.lm.sampling import SamplingOptions
from moshi.models import ModelFiles
from moshi.stream.engine import Engine
from moshi.stream.offline import Dialogue, run_dialogues
from moshi.stt.ear import Ear
from moshi.stt.transcribe import transcribe_batch
from moshi.stt.transcript import Word
from moshi.train.alignments import Entry as TrainEntry
from moshi.train.dataset import LMDataset
from moshi.train.loss import LossOptions, loss_weights
from moshi.tts import load_tts

BATCH = 8  # files run at once
USER_CHANNEL = 1  # dialogues: left = Moshi, right = the user
MAX_TAIL_S = 4.0  # dialogue: at most this much output after the user's audio


def _median_ms(values: list[float]) -> float | None:
    return round(1000 * statistics.median(values), 1) if values else None


def _batches(items: list, size: int = BATCH) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SpeechToText:
    """Our STT model (a model folder) over lists of audio."""

    def __init__(self, model_dir: Path):
        files = ModelFiles.resolve(str(model_dir))
        self.lm = files.load_lm(dtype=torch.float32)
        self.mimi = files.load_mimi()
        self.tokenizer = files.load_tokenizer()
        self.timing = files.config.stt_config

    def words(self, pcms: list[np.ndarray]) -> list[list[Word]]:
        out = []
        for batch in _batches(pcms):
            out += [t.words for t in transcribe_batch(self.lm, self.mimi, batch, self.tokenizer, self.timing)]
        return out


def _truth(entry: Entry) -> list[tuple[str, float]]:
    return [(w, span[0]) for w, span, _ in entry.meta["alignments"]]


def stt_row(stt: SpeechToText, manifest: Path, limit: int | None) -> dict:
    entries = list(read_manifest(manifest, limit))
    heard = [[(w.text, w.start) for w in ws] for ws in stt.words([read_audio(e.wav) for e in entries])]
    files: dict[str, list[int]] = {}  # voice -> its files
    for i, e in enumerate(entries):
        files.setdefault(e.meta.get("voice", "?"), []).append(i)
    by_voice: dict[str, Errors] = {}
    starts: list[float] = []
    for voice, ix in sorted(files.items()):
        truths, heard_here = [_truth(entries[i]) for i in ix], [heard[i] for i in ix]
        by_voice[voice], voice_starts = timed_word_errors(truths, heard_here)
        starts += voice_starts
    total = sum(by_voice.values(), Errors())
    return {"files": len(entries), "words": total.reference_words, "wer": round(total.rate, 4),
            "start_error_median_ms": _median_ms(starts), "words_timed": len(starts),
            "wer_by_voice": {v: round(err.rate, 4) for v, err in by_voice.items()}}  # fmt: skip


@torch.no_grad()
def tts_speech(model_dir: Path, texts: list[str], temp: float, seed: int) -> list[np.ndarray]:
    """Our TTS's audio [T] of each text."""
    tts, mimi = load_tts(ModelFiles.resolve(str(model_dir)), dtype=torch.float32, cuda_graphs=False,
                         temp=temp, seed=seed)  # fmt: skip
    out = []
    for batch in _batches(texts):
        for result in tts.generate_batch([[t] for t in batch]):
            codes = result.audio_codes.clamp(min=0)  # [1, n_q, T]
            out.append(mimi.decode(codes)[0, 0].numpy())
    return out


def recogniser_errors(recogniser: Recogniser, texts: list[str], pcms: list[np.ndarray]) -> Errors:
    return sum((word_errors(t, recogniser.transcribe(p)) for t, p in zip(texts, pcms, strict=True)), Errors())


def tts_rows(
    recogniser: Recogniser, model_dir: Path, manifest: Path, limit: int | None,
    stt: SpeechToText | None, temp: float, seed: int,
) -> dict:  # fmt: skip
    entries = list(read_manifest(manifest, limit))
    texts = [e.text for e in entries]
    ours = tts_speech(model_dir, texts, temp, seed)
    theirs = recogniser_errors(recogniser, texts, [read_audio(e.wav) for e in entries])
    mine = recogniser_errors(recogniser, texts, ours)
    row = {"files": len(entries), "words": mine.reference_words, "recogniser_wer": round(mine.rate, 4),
           "recogniser_wer_synthesiser": round(theirs.rate, 4),
           "wer_ratio": round(mine.rate / theirs.rate, 3) if theirs.rate else None,
           "seconds_of_speech": round(sum(len(p) for p in ours) / SAMPLE_RATE, 1)}  # fmt: skip
    if stt is not None:
        heard = stt.words(ours)
        pairs = zip(texts, heard, strict=True)
        row["stt_wer"] = round(sum((word_errors(t, [w.text for w in h]) for t, h in pairs), Errors()).rate, 4)
    return row


NO_EAR = "none"  # --ear none: the dialogue model hears alone, whatever its config says


def dialogue_outputs(
    model_dir: Path, users: list[np.ndarray], options: SamplingOptions, ear_dir: Path | None = None
) -> tuple[list[tuple[np.ndarray, list[tuple[str, float, float]]]], list[str] | None]:
    """The user's channels [T] through the engine -> (Moshi's channel [T'], its words) each,
    and what the model wrote down of the user's words (None: a model that does not); with
    `ear_dir`, that speech-to-text model writes them down for it (moshi/stt/ear.py; default:
    the one its config names, if any; NO_EAR: none)."""
    files = ModelFiles.resolve(str(model_dir))
    lm, mimi, tokenizer = files.load_lm(dtype=torch.float32), files.load_mimi(), files.load_tokenizer()
    ear_files = files.ear
    if ear_dir is not None:
        ear_files = None if str(ear_dir) == NO_EAR else ModelFiles.resolve(str(ear_dir))
    ear = None
    if ear_files is not None:
        ear = Ear(ear_files.load_lm(dtype=torch.float32), lm.config, tokenizer, cuda_graphs=False)
    dialogues = [Dialogue.of(u, round(MAX_TAIL_S * FRAME_RATE)) for u in users]
    done: dict[int, Dialogue] = {}
    with Engine(mimi, lm, tokenizer, min(BATCH, len(users)), options, cuda_graphs=False, ear=ear) as engine:
        run_dialogues(engine, dialogues, options, on_done=lambda i, d: done.__setitem__(i, d))
    eop = files.config.lm.text_end_padding_id
    out = []
    for i in range(len(users)):
        words = done[i].transcript(tokenizer, eop).words
        out.append((done[i].moshi_pcm(), [(w.text, w.start, w.end) for w in words]))
    return out, [done[i].heard_text() for i in range(len(users))] if tokenizer.user_turns else None


@torch.no_grad()
def replies_given_questions(model_dir: Path, entries: list[Entry]) -> dict | None:
    """Teacher-forced replies (see the module's docstring), each dialogue whole in one forward
    (each step attends to the last `lm.context` steps, as when it streams); None for a model
    whose text does not mark the turns (it does not write down the user's words)."""
    files = ModelFiles.resolve(str(model_dir))
    tokenizer = files.load_tokenizer()
    if not tokenizer.user_turns:
        return None
    lm, cfg = files.load_lm(dtype=torch.float32).eval(), files.config
    turns = LossOptions(turn_ids=(tokenizer.moshi_turn_id, tokenizer.user_turn_id))
    by_kind: dict[str, list[int]] = {}  # kind -> [correct, questions]
    with tempfile.TemporaryDirectory() as cache:
        longest = max(e.duration for e in entries)
        data = LMDataset(
            [TrainEntry(e.wav, e.duration) for e in entries], files.load_mimi(), tokenizer, cfg,
            task="dialogue", duration_sec=longest, cache_dir=cache, random_crop=False,
        )  # fmt: skip
        if len(data.files) != len(entries):
            raise ValueError(f"{len(entries) - len(data.files)} dialogue(s) unreadable: {dict(data.skipped)}")
        for f, entry in enumerate(entries):
            codes = data.crop(f, 0)[None]  # [1, K, T]
            ids = loss_weights(codes, cfg.lm, turns).reply[0]  # k on the k-th reply's tokens
            right = lm(codes).text_logits[0, 0].argmax(-1) == codes[0, 0]
            starts = {int(k): int((ids == k).nonzero()[0, 0]) for k in ids.unique() if k > 0}
            for q in questions(entry.meta):
                after = [(t, k) for k, t in starts.items() if t > q.end * FRAME_RATE]
                if after:
                    reply = ids == min(after)[1]  # the first reply after the question
                    tally = by_kind.setdefault(q.kind, [0, 0])
                    tally[0] += bool(right[reply].all())
                    tally[1] += 1
    ok, n = sum(x[0] for x in by_kind.values()), sum(x[1] for x in by_kind.values())
    return {
        "reply_given_question": round(ok / max(n, 1), 3),
        "reply_given_question_by_kind": {k: f"{a}/{b}" for k, (a, b) in sorted(by_kind.items())},
    }


def score_dialogues(
    metas: list[dict], outputs: list[tuple[np.ndarray, list[tuple[str, float, float]]]],
    transcribe: Callable[[np.ndarray], str] | None, stt: SpeechToText | None = None,
) -> dict:  # fmt: skip
    """Issue 13's dialogue figures from each dialogue's metadata and Moshi's (channel, words).
    `transcribe`: what reads each reply from Moshi's channel (None: its own words instead);
    `stt`: our speech-to-text model reads it too (`reply_correct_stt`: not independent, but it
    reads Moshi's voice far better than pocketsphinx, whose reading caps the measure)."""
    text_ok = audio_ok = stt_ok = n = 0
    by_kind: dict[str, list[int]] = {}  # the grammar rule's kind -> [correct from the text, questions]
    latencies: list[float] = []
    quiet = speech = 0
    for meta, (moshi, words) in zip(metas, outputs, strict=True):
        qs = questions(meta)
        for r in replies(qs, moshi, words):
            n += 1
            right = reply_is_correct(r.question.text, r.question.answer, r.text)
            text_ok += right
            kind = by_kind.setdefault(r.question.kind, [0, 0])
            kind[0], kind[1] = kind[0] + right, kind[1] + 1
            heard = transcribe(r.window(moshi)) if transcribe else r.text
            audio_ok += reply_is_correct(r.question.text, r.question.answer, heard)
            if stt is not None:
                read = " ".join(w.text for w in stt.words([r.window(moshi)])[0])
                stt_ok += reply_is_correct(r.question.text, r.question.answer, read)
            if r.latency is not None:
                latencies.append(r.latency)
        q, s = quiet_while_user_speaks(moshi, user_speech(meta))
        quiet, speech = quiet + q, speech + s
    stt_row = {"reply_correct_stt": round(stt_ok / max(n, 1), 3)} if stt is not None else {}
    return {
        "dialogues": len(metas),
        "questions": n,
        "reply_correct": round(audio_ok / max(n, 1), 3),
        **stt_row,
        "reply_correct_text": round(text_ok / max(n, 1), 3),
        "reply_correct_text_by_kind": {k: f"{ok}/{m}" for k, (ok, m) in sorted(by_kind.items())},
        "replied": round(len(latencies) / max(n, 1), 3),
        "latency_median_s": round(statistics.median(latencies), 2) if latencies else None,
        "quiet_while_user_speaks": round(quiet / max(speech, 1), 3),
    }


def dialogue_rows(
    recogniser: Recogniser | None,
    model_dir: Path,
    manifest: Path,
    limit: int | None,
    options: SamplingOptions,
    ear_dir: Path | None = None,
    stt: SpeechToText | None = None,
) -> dict[str, dict]:
    """{"corpus": the figures of the corpus' own Moshi, "model": ours}; replies read by the
    recogniser from Moshi's channel (None: from Moshi's own text stream), and by `stt` too
    if given. {} for a manifest with no dialogues."""
    entries = list(read_manifest(manifest, limit))
    if not entries:  # (a corpus built with --dialogues 0)
        return {}
    stereo = [read_audio_channels(e.wav) for e in entries]  # [2, T]
    metas = [e.meta for e in entries]
    truth = [(x[0], [(w, s[0], s[1]) for w, s, who in m["alignments"] if who == MAIN_SPEAKER])
             for x, m in zip(stereo, metas, strict=True)]  # fmt: skip
    transcribe = recogniser.transcribe if recogniser is not None else None
    rows = {"corpus": score_dialogues(metas, truth, transcribe, stt)}
    outputs, heard = dialogue_outputs(model_dir, [x[USER_CHANNEL] for x in stereo], options, ear_dir)
    rows["model"] = score_dialogues(metas, outputs, transcribe, stt)
    if heard is not None:  # how well it writes down the user's words: their word error rate
        said = [" ".join(w for w, _, who in m["alignments"] if who != MAIN_SPEAKER) for m in metas]
        errors = sum((word_errors(t, h) for t, h in zip(said, heard, strict=True)), Errors())
        rows["model"]["heard_wer"] = round(errors.rate, 4)
        rows["model"].update(replies_given_questions(model_dir, entries) or {})
    return rows
