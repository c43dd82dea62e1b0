"""`merge_corpora`: several builds of `moshi data build` read as one corpus, audio left in place.

Layout under `out_dir`:
    train/ and heldout/: dialogues.jsonl, stt.jsonl, tts.jsonl, each the builds' manifests
        one after the other in the order given, every path absolute; and mono.jsonl, each
        build's stt files then its tts files (what the codec and speech-to-text learn on; a
        merged corpus given as a build brings its own mono.jsonl); and users.jsonl, the
        dialogues' right channels (`"channel": 1`: the users, with their words) as mono items.
    grammar.jsgf, vocab.txt, lexicon.dic, tokenizer.model: the builds' own, which must be the
        same in every build (one grammar).
    corpus.json: the builds merged and the hours of each manifest.
"""

from __future__ import annotations

import json
from pathlib import Path

from .plan import KINDS, SPLITS

SHARED_FILES = ("grammar.jsgf", "vocab.txt", "lexicon.dic", "tokenizer.model")
MONO = "mono"
MONO_KINDS = ("stt", "tts")  # one voice per file: users', then Moshi's
USERS = "users"
USER_CHANNEL = 1  # a dialogue's right channel (train/alignments.py)


def user_channels(dialogues: list[dict]) -> list[dict]:
    """Manifest rows of stereo dialogues -> rows of their users' channels (text-only rows,
    which have no audio, left out)."""
    return [{**row, "channel": USER_CHANNEL} for row in dialogues if not row["path"].endswith(".json")]


def merge_corpora(out_dir: str | Path, builds: list[str | Path], *, force: bool = False) -> dict:
    """Merge `builds` into `out_dir` (refused when it is not empty, unless `force`); returns
    the summary also written to corpus.json. Nothing is written when a build is not one."""
    sources = [Path(b).resolve() for b in builds]
    if not sources:
        raise ValueError("merge needs at least one corpus")
    for source in sources:
        if not (source / "corpus.json").is_file():
            raise ValueError(f"{source} is not a corpus made by `moshi data build` (no corpus.json)")
        built = json.loads((source / "corpus.json").read_text()).get("args", {}).get("splits", SPLITS)
        if set(built) != set(SPLITS):
            raise ValueError(
                f"{source} holds its {' and '.join(built)} split alone (--split): merge whole builds"
            )
    repeated = sorted({str(s) for s in sources if sources.count(s) > 1})
    if repeated:
        raise ValueError(f"a corpus given twice: {', '.join(repeated)}")
    shared = {name: (sources[0] / name).read_bytes() for name in SHARED_FILES}
    for name, first in shared.items():
        other = next((s for s in sources[1:] if (s / name).read_bytes() != first), None)
        if other is not None:
            raise ValueError(f"{name} differs between {sources[0]} and {other}: builds of one grammar only")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} is not empty (force=True / --force rewrites it)")
    hours: dict[str, float] = {}
    for split in SPLITS:
        (out / split).mkdir(parents=True, exist_ok=True)
        manifests = {k: [_absolute(s / split / f"{k}.jsonl") for s in sources] for k in KINDS}
        manifests[MONO] = [_mono(s / split) for s in sources]
        manifests[USERS] = [user_channels(part) for part in manifests["dialogues"]]
        for kind, parts in manifests.items():
            rows = [row for part in parts for row in part]
            (out / split / f"{kind}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            hours[f"{split}/{kind}.jsonl"] = round(sum(r["duration"] for r in rows) / 3600, 4)
    for name, content in shared.items():
        (out / name).write_bytes(content)
    total = sum(h for name, h in hours.items() if not name.endswith((f"/{MONO}.jsonl", f"/{USERS}.jsonl")))
    summary = {"merged": [str(s) for s in sources], "hours": hours, "total_hours": round(total, 4)}
    (out / "corpus.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _mono(split_dir: Path) -> list[dict]:
    """A split's mono files: a merged corpus' mono.jsonl as it is, else stt then tts."""
    if (split_dir / f"{MONO}.jsonl").is_file():
        return _absolute(split_dir / f"{MONO}.jsonl")
    return [row for kind in MONO_KINDS for row in _absolute(split_dir / f"{kind}.jsonl")]


def _absolute(manifest: Path) -> list[dict]:
    """A manifest's rows, each path made absolute (relative paths are to the manifest's folder)."""
    if not manifest.is_file():
        return []
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    return [{**row, "path": str(manifest.parent / row["path"])} for row in rows]
