"""The model card's figures (moshi/small/README.md), by one command: builds the held-out
corpora the card reads (the held-out split alone of the two seeded builds of
recipes/small/README.md, ~2 min on 2 cores), runs bench/quality.py on the shipped family and
bench/family.py for its speed, then prints one JSON line per figure, each with its bar and
whether it is met, and writes the table to OUT/card.md.

    python bench/card.py                     # ~35 min on 2 cores: every figure of the card
    python bench/card.py --corpus corpus --dialogue-corpus corpus-dialogue   # corpora already built
    python bench/card.py --smoke             # tiny held-out sets, one file each (CI)

The speed rows time the machine as it is: run it on an idle one (a busy machine's figures
say nothing of the bar). The weights are the shipped ones (moshi/small, as `--model small`
runs them); the table names the source and commit of each (moshi/small/manifest.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from family import BUDGET_MB, FRAME_MS, REALTIME_FACTOR  # bench/family.py: the speed and size bars

from moshi.data.build import build_corpus
from moshi.small import FOLDER, KINDS, MANIFEST, model_folder

BENCH = Path(__file__).resolve().parent

# The two builds the card reads (recipes/small/README.md sections 1 and 3), build_corpus'
# arguments; --smoke's are tiny.
MONO_BUILD = dict(seed=0, n_dialogues=0, n_utterances=1200, n_tts=600, heldout_fraction=0.1)
DIALOGUE_BUILD = dict(seed=13, n_dialogues=4000, n_utterances=0, n_tts=0, heldout_fraction=0.02)
SMOKE_MONO = dict(MONO_BUILD, n_utterances=10, n_tts=10)
SMOKE_DIALOGUE = dict(DIALOGUE_BUILD, n_dialogues=50)
LIMIT = 40  # files (and dialogues) of each held-out manifest


@dataclass(frozen=True)
class Figure:
    model: str
    measure: str
    where: dict  # the bench line it is read from: these keys and values
    key: str  # the value's key in that line
    bar: float | None = None  # None: reported, no bar
    at_most: bool = True  # the bar is a ceiling (else a floor)


# The bench lines the figures are read from.
CODEC_USERS = {"metric": "codec", "manifest": "heldout/stt.jsonl"}
CODEC_MOSHI = {"metric": "codec", "manifest": "heldout/tts.jsonl"}
STT_USERS = {"metric": "stt", "manifest": "heldout/stt.jsonl"}
STT_MOSHI = {"metric": "stt", "manifest": "heldout/tts.jsonl"}
TTS = {"metric": "tts"}
DIALOGUE = {"metric": "dialogue", "audio": "model"}
CORPUS_DIALOGUE = {"metric": "dialogue", "audio": "corpus"}  # the corpus' own Moshi channel


def speed(model: str) -> dict:
    return {"bench": "family", "model": model}


RATIO = "pocketsphinx WER ratio"
START = "start_error_median_ms"
FRAME = "ms per 80 ms frame, 2 threads"
FRAME_BAR_MS = FRAME_MS / REALTIME_FACTOR
FIGURES = (
    Figure("codec", "STOI, users", CODEC_USERS, "stoi_mean", 0.85, at_most=False),
    Figure("codec", "STOI, Moshi's voice", CODEC_MOSHI, "stoi_mean", 0.85, at_most=False),
    Figure("codec", f"{RATIO} (round trip / original), users", CODEC_USERS, "wer_ratio", 1.15),
    Figure("codec", f"{RATIO} (round trip / original), Moshi's voice", CODEC_MOSHI, "wer_ratio", 1.15),
    Figure("speech-to-text", "WER, held-out users", STT_USERS, "wer", 0.10),
    Figure("speech-to-text", "WER, Moshi's voice", STT_MOSHI, "wer"),
    Figure("speech-to-text", "word start error, median ms, users", STT_USERS, START, 100),
    Figure("speech-to-text", "word start error, median ms, Moshi's voice", STT_MOSHI, START, 100),
    Figure("text-to-speech", f"{RATIO} (ours / the synthesiser's)", TTS, "wer_ratio", 1.2),
    Figure("text-to-speech", "our speech-to-text's WER on it", TTS, "stt_wer", 0.10),
    Figure("dialogue", "correct replies (pocketsphinx on Moshi's channel)", DIALOGUE, "reply_correct", 0.80,
           at_most=False),
    Figure("dialogue", "correct replies (our speech-to-text on Moshi's channel)", DIALOGUE,
           "reply_correct_stt"),
    Figure("dialogue", "correct replies (its text)", DIALOGUE, "reply_correct_text"),
    Figure("dialogue", "correct replies of the corpus' own Moshi, by pocketsphinx (the reading's ceiling)",
           CORPUS_DIALOGUE, "reply_correct"),
    Figure("dialogue", "reply start latency, median s", DIALOGUE, "latency_median_s", 1.0),
    Figure("dialogue", "quiet while the user speaks", DIALOGUE, "quiet_while_user_speaks", 0.90,
           at_most=False),
    Figure("dialogue", "its ear's WER on the user's words", DIALOGUE, "heard_wer"),
    Figure("speech-to-text", FRAME, speed("stt"), "frame_ms", FRAME_BAR_MS),
    Figure("text-to-speech", FRAME, speed("tts"), "frame_ms", FRAME_BAR_MS),
    Figure("dialogue", FRAME, speed("dialogue"), "frame_ms", FRAME_BAR_MS),
    Figure("all", "MB of weights", speed("all"), "mb_bf16", BUDGET_MB),
)  # fmt: skip


def run_bench(script: str, *args: object) -> list[dict]:
    """`python bench/SCRIPT ARGS` -> its JSON lines (its stderr passes through)."""
    cmd = [sys.executable, str(BENCH / script), *map(str, args)]
    print(f"bench card: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"bench card: {script} failed (exit {proc.returncode})")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def read(figure: Figure, lines: list[dict]) -> dict:
    """The figure's JSON line: its value, its bar and whether it is met (None: no bar, or not measured)."""
    line = next((x for x in lines if all(x.get(k) == v for k, v in figure.where.items())), None)
    value = None if line is None else line.get(figure.key)
    met = None
    if figure.bar is not None and value is not None:
        met = value <= figure.bar if figure.at_most else value >= figure.bar
    bar = None if figure.bar is None else f"{'<=' if figure.at_most else '>='} {figure.bar}"
    return {
        "bench": "card",
        "model": figure.model,
        "measure": figure.measure,
        "value": value,
        "bar": bar,
        "met": met,
    }


def table(rows: list[dict], commits: dict[str, str]) -> str:
    out = ["| model | measure | bar | shipped weights | met |", "|---|---|---|---|---|"]
    for r in rows:
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        value = "n/a" if r["value"] is None else r["value"]
        out.append(f"| {r['model']} | {r['measure']} | {r['bar'] or ''} | {value} | {met} |")
    out += ["", "Weights: " + ", ".join(f"{kind} {commit}" for kind, commit in commits.items())]
    return "\n".join(out) + "\n"


def shipped_commits() -> dict[str, str]:
    """Each shipped file's source: {kind: "step N of runs/... (commit abcdef12)"}."""
    manifest = json.loads((FOLDER / MANIFEST).read_text())
    out = {}
    for kind in ("codec", *KINDS):
        if kind in manifest:
            entry = manifest[kind]
            commit = entry.get("commit", manifest["commit"])[:8]
            out[kind] = f"step {entry.get('step')} of {entry.get('source')} (commit {commit})"
    return out


def ensure_corpus(path: Path, build: dict, workers: int | None) -> Path:
    """`path`, built (its held-out split alone) unless it is a corpus already."""
    if not (path / "corpus.json").is_file():
        print(f"bench card: building the held-out split of {path}", file=sys.stderr, flush=True)
        build_corpus(path, **build, workers=workers, splits=("heldout",))
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("card"), help="where the corpora and card.md go")
    p.add_argument("--corpus", type=Path, help="the mono corpus (default: OUT/corpus, built if missing)")
    p.add_argument("--dialogue-corpus", type=Path, help="the dialogue corpus (default: OUT/corpus-dialogue)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the quality benches")
    p.add_argument("--workers", type=int, help="processes building the corpora (default: one per core)")
    p.add_argument("--smoke", action="store_true", help="tiny held-out sets, one file each (CI)")
    args = p.parse_args()
    limit = 1 if args.smoke else LIMIT
    builds = (SMOKE_MONO, SMOKE_DIALOGUE) if args.smoke else (MONO_BUILD, DIALOGUE_BUILD)
    mono = ensure_corpus(args.corpus or args.out / "corpus", builds[0], args.workers)
    talks = ensure_corpus(args.dialogue_corpus or args.out / "corpus-dialogue", builds[1], args.workers)
    threads = ("--threads", args.threads)
    lines = run_bench("quality.py", mono, "--shipped", "--limit", limit, *threads)
    models = ("--dialogue", model_folder("dialogue"), "--stt", model_folder("stt"))
    lines += run_bench("quality.py", talks, *models, "--limit", limit, *threads)
    speed = ("--smoke",) if args.smoke else ("--repeat", 5)
    lines += run_bench("family.py", "--threads", min(2, os.cpu_count() or 1), *speed)
    rows = [read(f, lines) for f in FIGURES]
    for row in rows:
        print(json.dumps(row), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "card.md").write_text(table(rows, shipped_commits()))
    print(f"bench card: {args.out / 'card.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
