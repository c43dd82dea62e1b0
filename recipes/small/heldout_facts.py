"""What the dialogue bar asks: the share of a corpus' held-out questions whose fact (the
grammar's `fact`: kind, the question's slot words, the answer's content) Moshi says in
training under another phrasing, by kind. The rest need a fact composed, not recalled.
The plan alone is read (no audio): instant for any corpus size.

    python recipes/small/heldout_facts.py --seed 13 --dialogues 4000 --heldout-fraction 0.02
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from moshi.data.grammar import Exchange, fact
from moshi.data.plan import plan
from moshi.data.synth import MOSHI_VOICE


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--dialogues", type=int, default=4000)
    p.add_argument("--heldout-fraction", type=float, default=0.02)
    args = p.parse_args(argv)
    items = plan(args.seed, args.dialogues, 0, 0, args.heldout_fraction, MOSHI_VOICE)
    exchanges: dict[str, list[Exchange]] = {"train": [], "heldout": []}
    for it in items:
        exchanges[it.split] += it.dialogue.exchanges if it.dialogue else ()
    taught = {fact(ex) for ex in exchanges["train"]}
    asked, known = Counter[str](), Counter[str]()
    for ex in exchanges["heldout"]:
        asked[ex.kind] += 1
        known[ex.kind] += fact(ex) in taught
    for kind in sorted(asked):
        share = round(known[kind] / asked[kind], 3)
        print(json.dumps({"kind": kind, "questions": asked[kind], "fact_in_training": share}))
    total = sum(asked.values())
    print(json.dumps({"kind": "all", "questions": total, "training_exchanges": len(exchanges["train"]),
                      "fact_in_training": round(sum(known.values()) / max(total, 1), 3)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
