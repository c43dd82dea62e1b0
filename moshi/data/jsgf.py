"""The grammar as a JSGF file for the recogniser, its vocabulary, and the pronunciations of
the words CMUdict lacks: what `build_corpus` writes beside the corpus (`grammar.jsgf`,
`vocab.txt`, `lexicon.dic`), so that `moshi.eval` reads files and never imports this package.

Top rule: `<sentence>`, one question, answer or backchannel (a rule for several sentences in
a row, `<sentence>+`, makes pocketsphinx build a graph of gigabytes: decode a dialogue turn by
turn)."""

from __future__ import annotations

import re

from . import vocabulary as v
from .grammar import _SLOT, RULES, SLOT_TYPES

_NAME = "moshi_corpus"


def _rule_name(kind: str) -> str:
    return "t_" + kind


def _template(t: str) -> str:
    def slot(m: re.Match) -> str:
        kind = m.group(2)
        if kind is None:
            raise ValueError(f"template slot {m.group(0)!r} has no type")
        return f"<{_rule_name(kind)}>"

    return _SLOT.sub(slot, t)


def jsgf() -> str:
    """The whole grammar (every rule's questions and answers, and the backchannels) in JSGF."""
    sentences = sorted({_template(t) for r in RULES for t in r.questions + r.answers} | set(v.BACKCHANNELS))
    lines = [f"#JSGF V1.0;\ngrammar {_NAME};"]
    lines.append("public <sentence> = " + " | ".join(f"( {s} )" for s in sentences) + ";")
    for kind, items in sorted(SLOT_TYPES.items()):
        lines.append(f"<{_rule_name(kind)}> = " + " | ".join(f"( {w} )" for w in items) + ";")
    return "\n".join(lines) + "\n"


def vocabulary() -> list[str]:
    """Every word the grammar can produce, sorted."""
    text = " ".join([_SLOT.sub(" ", t) for r in RULES for t in r.questions + r.answers])
    text += " " + " ".join(w for items in SLOT_TYPES.values() for w in items) + " " + " ".join(v.BACKCHANNELS)
    return sorted(set(text.split()))


def lexicon() -> str:
    """Pronunciations (CMUdict's ARPAbet) of the grammar's words outside CMUdict."""
    return "".join(f"{w} {p}\n" for w, p in sorted(v.PRONUNCIATIONS.items()))
