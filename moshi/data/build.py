"""`build_corpus`: the whole training corpus from one seed, synthesised in a process pool.

Layout under `out_dir`:
    train/ and heldout/: dialogues.jsonl, stt.jsonl, tts.jsonl (one {"path", "duration"} per
        line, paths relative to the manifest), users.jsonl (the dialogues' right channels, the
        users', as mono items: `"channel": 1`), and dialogues/, stt/, tts/ holding NNNNNN.wav
        with NNNNNN.json beside each: {"alignments": [[word, [start, end], speaker], ...],
        "voice": ..., and "text" (mono) or "exchanges" (dialogues)}.
    grammar.jsgf, vocab.txt, lexicon.dic: the grammar for the recogniser (`moshi.eval`).
    tokenizer.model: the LMs' text tokenizer, one piece per word of vocab.txt (tokenizer.py).
    corpus.json: the arguments, the voices and hours of each manifest.

Two passes: every voice speaks each word it needs once (`synth.synth_words`, cached in
`out_dir/.words/` during the build), then each file is joined from those words.

`text_only`: the same files' NNNNNN.json alone, their audio rendered for its word times and
not written; the manifests name the .json files (text-only items, which a dialogue model
learns its text stream from: many more exchanges than audio could hold, at little cost).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import multiprocessing
import os
import shutil
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, write_wav
from . import jsgf
from .dialogue import render_dialogue, render_utterance
from .merge import USERS, user_channels
from .plan import KINDS, SPLITS, Item, plan
from .synth import MOSHI_VOICE, Voice, synth_words
from .tokenizer import write_tokenizer

log = logging.getLogger(__name__)
_WORDS_DIR = ".words"
_CHUNK = 60  # words per synthesis task


def build_corpus(
    out_dir: str | Path,
    *,
    seed: int = 0,
    n_dialogues: int = 1500,
    n_utterances: int = 3000,
    n_tts: int | None = None,
    heldout_fraction: float = 0.1,
    moshi_voice: Voice = MOSHI_VOICE,
    workers: int | None = None,
    force: bool = False,
    text_only: bool = False,
    splits: tuple[str, ...] = SPLITS,
) -> dict:
    """Build the corpus into `out_dir` (refused when it is not empty, unless `force`); returns
    the summary also written to corpus.json. `n_tts` (Moshi's voice alone) defaults to half of
    `n_utterances` (users' voices); `heldout_fraction` of each kind is held out. `splits`: the
    ones rendered (each split's items depend on the seed and counts alone, so the held-out
    split built by itself is the full build's, file for file, in a fraction of the time)."""
    if min(n_dialogues, n_utterances, n_tts or 0, seed) < 0 or not 0 < heldout_fraction < 1:
        raise ValueError("expected counts >= 0, seed >= 0 and 0 < heldout_fraction < 1")
    if not splits or not set(splits) <= set(SPLITS):
        raise ValueError(f"expected splits among {SPLITS}, got {splits!r}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} is not empty (force=True / --force rebuilds it)")
        for name in (*SPLITS, _WORDS_DIR):
            shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    n_tts = n_utterances // 2 if n_tts is None else n_tts
    items = plan(seed, n_dialogues, n_utterances, n_tts, heldout_fraction, moshi_voice)
    items = [it for it in items if it.split in splits]
    workers = workers or max(1, os.cpu_count() or 1)
    with multiprocessing.Pool(workers) as pool:
        _synthesise(out / _WORDS_DIR, _words_by_voice(items, moshi_voice), pool)
        for split, kind in ((s, k) for s in splits for k in KINDS):
            (out / split / kind).mkdir(parents=True, exist_ok=True)
        render = functools.partial(_render, out, moshi_voice, text_only)
        ordered = sorted(items, key=lambda it: it.voice.id)  # a worker keeps few voices loaded
        durations = {it.stem: 0.0 for it in items}
        for i, (stem, dur) in enumerate(pool.imap_unordered(render, ordered, chunksize=4)):
            durations[stem] = dur
            if (i + 1) % max(1, len(items) // 10) == 0:
                log.info("rendered %d/%d files", i + 1, len(items))
    shutil.rmtree(out / _WORDS_DIR)
    summary = _write_index(out, items, durations, ".json" if text_only else ".wav", splits)
    summary["args"] = dict(seed=seed, n_dialogues=n_dialogues, n_utterances=n_utterances, n_tts=n_tts,
                           heldout_fraction=heldout_fraction, moshi_voice=asdict(moshi_voice),
                           text_only=text_only, splits=list(splits))  # fmt: skip
    (out / "corpus.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _words_by_voice(items: list[Item], moshi: Voice) -> dict[Voice, set[str]]:
    need: dict[Voice, set[str]] = defaultdict(set)
    for it in items:
        for who, words in it.words().items():
            need[moshi if who == "moshi" else it.voice] |= words
    return need


def _synthesise(words_dir: Path, need: dict[Voice, set[str]], pool) -> None:
    words_dir.mkdir(parents=True)
    tasks = []
    for voice, words in need.items():
        ws = sorted(words)
        n = math.ceil(len(ws) / _CHUNK)
        tasks += [(voice, ws[i::n]) for i in range(n)]
    got: dict[Voice, dict[str, np.ndarray]] = defaultdict(dict)
    for voice, audio in pool.imap_unordered(_synth_task, tasks):
        got[voice] |= audio
    for voice, audio in got.items():
        order = sorted(audio)
        np.savez(words_dir / f"{voice.id}.npz", *[audio[w] for w in order], words=np.array(order))
    log.info("synthesised %d words in %d voices", sum(len(a) for a in got.values()), len(got))


def _synth_task(task: tuple[Voice, list[str]]) -> tuple[Voice, dict[str, np.ndarray]]:
    voice, words = task
    return voice, synth_words(voice, words)


@functools.lru_cache(maxsize=4)
def _load_words(words_dir: Path, voice_id: str) -> dict[str, np.ndarray]:
    with np.load(words_dir / f"{voice_id}.npz") as f:
        return {str(w): f[f"arr_{i}"] for i, w in enumerate(f["words"])}


def _render(out: Path, moshi: Voice, text_only: bool, it: Item) -> tuple[str, float]:
    cache = functools.partial(_load_words, out / _WORDS_DIR)
    meta: dict = {"voice": it.voice.id}
    if it.dialogue is not None:
        pcm, alignments = render_dialogue(it.dialogue, cache(it.voice.id), cache(moshi.id))
        meta["exchanges"] = [asdict(ex) for ex in it.dialogue.exchanges]
        meta["greeting"] = it.dialogue.greeting
    else:
        pcm, alignments = render_utterance(it.text, cache(it.voice.id), it.seed, augmented=it.kind == "stt")
        meta["text"] = it.text
    if not text_only:
        write_wav(out / f"{it.stem}.wav", pcm)
    meta["alignments"] = [[w, list(span), who] for w, span, who in alignments]
    (out / f"{it.stem}.json").write_text(json.dumps(meta) + "\n")
    return it.stem, len(pcm) / SAMPLE_RATE


def _write_index(
    out: Path, items: list[Item], durations: dict[str, float], suffix: str, splits: tuple[str, ...]
) -> dict:
    """The manifests, the grammar files; -> {"hours": {manifest: h}, "voices": {split: [...]}}."""
    hours: dict[str, float] = {}
    for split in splits:
        for kind in KINDS:
            mine = [it for it in items if it.split == split and it.kind == kind]
            rows = [{"path": f"{kind}/{it.index:06d}{suffix}", "duration": durations[it.stem]} for it in mine]
            (out / split / f"{kind}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            hours[f"{split}/{kind}.jsonl"] = round(sum(durations[it.stem] for it in mine) / 3600, 4)
            if kind == "dialogues":
                users = user_channels(rows)
                (out / split / f"{USERS}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in users))
    (out / "grammar.jsgf").write_text(jsgf.jsgf())
    (out / "vocab.txt").write_text("\n".join(jsgf.vocabulary()) + "\n")
    (out / "lexicon.dic").write_text(jsgf.lexicon())
    write_tokenizer(out)
    voices = {s: sorted({it.voice.id for it in items if it.split == s}) for s in splits}
    return {"hours": hours, "total_hours": round(sum(hours.values()), 4), "voices": voices}
