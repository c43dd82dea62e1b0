"""Quality against the corpus' held-out set, JSON lines: today the recogniser's baseline
(pocketsphinx with the corpus grammar, on the synthesisers' own audio), the denominator of
the codec and TTS bars of issue 13.

    python bench/quality.py /work/corpus                      # held-out stt (users) and tts (Moshi)
    python bench/quality.py /work/corpus --limit 50 --split train
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from moshi.eval.manifest import recogniser_wer
from moshi.eval.recogniser import Recogniser


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", type=Path, help="a corpus built by `moshi data build`")
    p.add_argument("--split", default="heldout", choices=["train", "heldout"])
    p.add_argument("--kinds", nargs="+", default=["stt", "tts"], choices=["stt", "tts"])
    p.add_argument("--limit", type=int, default=None, help="the first N files of each manifest")
    args = p.parse_args()
    recogniser = Recogniser(args.corpus)
    for kind in args.kinds:
        t0 = time.perf_counter()
        row = recogniser_wer(recogniser, args.corpus / args.split / f"{kind}.jsonl", limit=args.limit)
        row = {"bench": "quality", "metric": "recogniser_wer", "audio": "original", **row}
        row["manifest"] = f"{args.split}/{kind}.jsonl"
        row["seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
