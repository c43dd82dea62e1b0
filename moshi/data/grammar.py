"""A seeded grammar of short spoken exchanges: a question (the user) and its correct answer
(Moshi's reply).

Each `Rule` holds question and answer templates with typed slots, `"what is {a:number} plus
{b:number}"`, and a `solve(rng)` that draws the slots' values (the answer's too, so it is
correct). The same templates, with each slot replaced by its type's word list, make the JSGF
grammar the recogniser decodes with (`jsgf()`), so sampling and recognition cannot drift.

Held-out sentences: a sentence is held out when a hash of its text falls in the first
`HELDOUT_PERCENT` buckets, whatever the seed. Training exchanges hold no held-out sentence
(neither question nor answer); held-out exchanges have a held-out question.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from . import vocabulary as v

HELDOUT_PERCENT = 10
_SLOT = re.compile(r"\{(\w+)(?::(\w+))?\}")

# slot type -> its word sequences (one JSGF rule each).
SLOT_TYPES: dict[str, tuple[str, ...]] = {
    "number": v.NUMBERS, "hour": v.HOURS, "colored": tuple(v.COLORED), "color": v.COLORS,
    "day": v.DAYS, "month": v.MONTHS, "ordinal": v.ORDINALS, "thing": tuple(v.PROPERTIES),
    "adjective": v.ADJECTIVES, "spell": v.SPELL_WORDS, "say": v.SAY_WORDS,
    "letters": tuple(" ".join(w) for w in v.SPELL_WORDS),
    "yesno": ("yes", "no"), "compare": ("bigger", "smaller"), "unit": ("days", "hours", "minutes",
    "months", "seconds"), "period": ("week", "day", "hour", "year", "minute"),
}  # fmt: skip


@dataclass(frozen=True)
class Exchange:
    kind: str
    question: str
    answer: str


@dataclass(frozen=True)
class Rule:
    kind: str
    questions: tuple[str, ...]
    answers: tuple[str, ...]
    solve: Callable[[random.Random], dict[str, str] | None] = lambda rng: {}
    weight: float = 1.0

    def sample(self, rng: random.Random) -> Exchange | None:
        values = self.solve(rng)
        if values is None:
            return None
        return Exchange(
            self.kind, fill(rng.choice(self.questions), values), fill(rng.choice(self.answers), values)
        )


def fill(template: str, values: dict[str, str]) -> str:
    return _SLOT.sub(lambda m: values[m.group(1)], template)


def _n(rng: random.Random, lo: int, hi: int) -> tuple[int, str]:
    k = rng.randint(lo, hi)
    return k, v.number_words(k)


def _arith(op: Callable[[int, int], int], hi: int) -> Callable[[random.Random], dict[str, str] | None]:
    def solve(rng: random.Random) -> dict[str, str] | None:
        (a, sa), (b, sb) = _n(rng, 0, hi), _n(rng, 0, hi)
        c = op(a, b)
        return {"a": sa, "b": sb, "c": v.number_words(c)} if 0 <= c < 100 else None

    return solve


def _next(items: tuple[str, ...], step: int) -> Callable[[random.Random], dict[str, str]]:
    def solve(rng: random.Random) -> dict[str, str]:
        i = rng.randrange(len(items))
        return {"d": items[i], "e": items[(i + step) % len(items)]}

    return solve


def _color_yesno(rng: random.Random) -> dict[str, str]:
    t = rng.choice(list(v.COLORED))
    asked = v.COLORED[t] if rng.random() < 0.5 else rng.choice(v.COLORS)
    return {"t": t, "c": v.COLORED[t], "c2": asked, "yn": "yes" if asked == v.COLORED[t] else "no"}


def _property_yesno(rng: random.Random) -> dict[str, str]:
    t = rng.choice(list(v.PROPERTIES))
    p = rng.choice(v.PROPERTIES[t])
    yes = rng.random() < 0.5
    return {"t": t, "adj": p if yes else v.OPPOSITE[p], "p": p, "yn": "yes" if yes else "no"}


def _compare(rng: random.Random) -> dict[str, str] | None:
    (a, sa), (b, sb) = _n(rng, 0, 30), _n(rng, 0, 30)
    if a == b:
        return None
    rel = rng.choice(("bigger", "smaller"))
    true_rel = "bigger" if a > b else "smaller"
    big = sa if a > b else sb
    return {
        "a": sa,
        "b": sb,
        "rel": rel,
        "rel2": true_rel,
        "yn": "yes" if rel == true_rel else "no",
        "c": big,
    }


def _clock(rng: random.Random) -> dict[str, str]:
    (h, sh), (n, sn) = _n(rng, 1, 12), _n(rng, 2, 6)
    return {"h": sh, "n": sn, "h2": v.HOURS[(h - 1 + n) % 12]}


_DURATIONS = (
    ("days", "week", 7),
    ("hours", "day", 24),
    ("minutes", "hour", 60),
    ("months", "year", 12),
    ("seconds", "minute", 60),
)


def _duration(rng: random.Random) -> dict[str, str]:
    u, p, k = rng.choice(_DURATIONS)
    return {"u": u, "p": p, "k": v.number_words(k)}


def _pick(key: str, items: tuple[str, ...]) -> Callable[[random.Random], dict[str, str]]:
    return lambda rng: {key: rng.choice(items)}


def _spell(rng: random.Random) -> dict[str, str]:
    w = rng.choice(v.SPELL_WORDS)
    return {"w": w, "l": " ".join(w)}


def _ordinal_month(rng: random.Random) -> dict[str, str]:
    i = rng.randrange(12)
    return {"o": v.ORDINALS[i], "m": v.MONTHS[i]}


def _chat(kind: str, questions: str, answers: str, weight: float = 0.15) -> Rule:
    return Rule(kind, tuple(questions.split(" / ")), tuple(answers.split(" / ")), weight=weight)


RULES: tuple[Rule, ...] = (
    Rule("arithmetic", ("what is {a:number} plus {b:number}", "how much is {a:number} plus {b:number}",
         "what do you get when you add {a:number} and {b:number}"),
         ("{a:number} plus {b:number} is {c:number}", "it is {c:number}", "that makes {c:number}"),
         _arith(lambda a, b: a + b, 20), 1.5),
    Rule("arithmetic", ("what is {a:number} minus {b:number}", "how much is {a:number} minus {b:number}"),
         ("{a:number} minus {b:number} is {c:number}", "it is {c:number}"), _arith(lambda a, b: a - b, 20)),
    Rule("arithmetic", ("what is {a:number} times {b:number}", "what is {a:number} multiplied by {b:number}"),
         ("{a:number} times {b:number} is {c:number}", "it is {c:number}"), _arith(lambda a, b: a * b, 9)),
    Rule("color", ("what color is the {t:colored}", "what is the color of the {t:colored}",
         "tell me the color of the {t:colored}"),
         ("the {t:colored} is {c:color}", "it is {c:color}", "{c:color}"),
         lambda rng: (lambda t: {"t": t, "c": v.COLORED[t]})(rng.choice(list(v.COLORED))), 1.5),
    Rule("yesno", ("is the {t:colored} {c2:color}",), ("{yn:yesno} the {t:colored} is {c:color}",),
         _color_yesno),
    Rule("yesno", ("is {t:thing} {adj:adjective}",), ("{yn:yesno} {t:thing} is {p:adjective}",),
         _property_yesno, 1.5),
    Rule("yesno", ("is {a:number} {rel:compare} than {b:number}",),
         ("{yn:yesno} {a:number} is {rel2:compare} than {b:number}",), _compare),
    Rule("compare", ("which is bigger {a:number} or {b:number}",), ("{c:number} is bigger", "{c:number}"),
         _compare, 0.5),
    Rule("days", ("what day comes after {d:day}", "what is the day after {d:day}"),
         ("the day after {d:day} is {e:day}", "it is {e:day}", "{e:day}"), _next(v.DAYS, 1)),
    Rule("days", ("what day comes before {d:day}", "what is the day before {d:day}"),
         ("the day before {d:day} is {e:day}", "it is {e:day}"), _next(v.DAYS, -1)),
    Rule("months", ("what month comes after {d:month}", "which month is after {d:month}"),
         ("the month after {d:month} is {e:month}", "it is {e:month}"), _next(v.MONTHS, 1), 0.7),
    Rule("months", ("what is the {o:ordinal} month of the year", "which month is the {o:ordinal} month"),
         ("the {o:ordinal} month is {m:month}", "it is {m:month}"), _ordinal_month, 0.5),
    Rule("time", ("what time is it {n:hour} hours after {h:hour} o'clock",
         "if it is {h:hour} o'clock what time is it in {n:hour} hours"),
         ("it is {h2:hour} o'clock", "it will be {h2:hour} o'clock"), _clock),
    Rule("time", ("how many {u:unit} are in a {p:period}", "how many {u:unit} are there in a {p:period}"),
         ("there are {k:number} {u:unit} in a {p:period}", "{k:number}"), _duration, 0.5),
    Rule("spell", ("how do you spell {w:spell}", "can you spell {w:spell}", "spell the word {w:spell}"),
         ("{w:spell} is spelled {l:letters}", "{l:letters}"), _spell, 1.2),
    Rule("say", ("say {w:say}", "please say {w:say}", "can you say {w:say}", "repeat after me {w:say}",
         "say the word {w:say}"), ("{w:say}",), _pick("w", v.SAY_WORDS), 1.2),
    _chat("greeting", "hello / hi / hi there / hey / hello moshi / hi moshi / hey moshi / good morning / "
          "good afternoon / good evening", "hello how can i help you / hi there what can i do for you / "
          "hello nice to hear you / hey what would you like to know", 0.8),
    _chat("smalltalk", "how are you / how are you doing / how is it going",
          "i am fine thank you / i am doing well thanks"),
    _chat("smalltalk", "what is your name / who are you", "my name is moshi / i am moshi"),
    _chat("smalltalk", "thank you / thanks / thanks a lot", "you are welcome / no problem"),
    _chat("smalltalk", "goodbye / bye / see you later", "goodbye have a nice day / bye talk to you soon"),
    _chat("smalltalk", "nice to meet you / it is nice to meet you", "nice to meet you too"),
    _chat("smalltalk", "what can you do / what do you know", "i can answer simple questions"),
    _chat("smalltalk", "do you like music / do you like to sing", "yes i like music"),
    _chat("smalltalk", "are you a person / are you human", "no i am a computer program"),
    _chat("smalltalk", "where do you live / where are you", "i live in this computer"),
    _chat("smalltalk", "what is your favorite color", "my favorite color is blue"),
)  # fmt: skip


def is_heldout(sentence: str) -> bool:
    """Whether a sentence is held out for evaluation (a hash of its text; seed independent)."""
    digest = hashlib.sha256(sentence.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELDOUT_PERCENT


def sample_exchange(rng: random.Random, heldout: bool) -> Exchange:
    """One exchange of the split: training ones hold no held-out sentence, held-out ones have
    a held-out question."""
    weights = [r.weight for r in RULES]
    for _ in range(10_000):
        ex = rng.choices(RULES, weights)[0].sample(rng)
        if ex is None:
            continue
        if heldout and is_heldout(ex.question):
            return ex
        if not heldout and not is_heldout(ex.question) and not is_heldout(ex.answer):
            return ex
    raise RuntimeError("the grammar has no sentence of this split")  # pragma: no cover


def sample_sentence(rng: random.Random, heldout: bool) -> str:
    """One question or answer of the split (answers of "say" exchanges are one word: kept)."""
    while True:
        ex = rng.choices(RULES, [r.weight for r in RULES])[0].sample(rng)
        if ex is not None:
            s = ex.question if rng.random() < 0.5 else ex.answer
            if is_heldout(s) == heldout:
                return s


def words(sentence: str) -> list[str]:
    return sentence.split()


# Words of the answer templates that carry no content ("it is {c}", "the {t} is {c}").
_ANSWER_FILLERS = frozenset(["the", "is", "it", "that", "makes", "there", "are", "will", "be", "spelled"])
# Words of slot values that name a fact (articles and words the templates also say left out).
_SLOT_WORDS = frozenset(w for values in SLOT_TYPES.values() for v in values for w in v.split()) - (
    _ANSWER_FILLERS | {"a", "an", "day", "month", "color"}
)
_CHAT_KINDS = ("greeting", "smalltalk")
_REPLY_SLACK = 2  # a reply may be twice as long as the corpus' answer,
_ANSWER_SPREAD = 5  # or this many words longer: one question's answers differ by up to five
# words ("tuesday" / "the day after monday is tuesday"; "seven" / "there are seven days in a week")


def reply_is_correct(question: str, answer: str, reply: str) -> bool:
    """Whether `reply` answers `question` as the corpus' `answer` does. Small talk: the reply
    is one of its rule's answers. Otherwise the reply holds, in order, the answer's content
    words (its words left once the question's words and the templates' fillers are taken
    out; for "say" exchanges, the word itself), names no fact word more often than the
    question and the answer do together (no other colour, number or day: "black white red"
    lists, "two two two" babbles), and is at most twice the answer's length or five words
    longer ("it is black" answers "what color is the coal" as "black" does)."""
    said = reply.split()
    for rule in RULES:
        if rule.kind in _CHAT_KINDS and question in rule.questions:
            return reply in rule.answers
    answer_words = answer.split()
    n = len(answer_words)
    if not said or len(said) > max(_REPLY_SLACK * n, n + _ANSWER_SPREAD):
        return False
    named = Counter(w for w in said if w in _SLOT_WORDS)
    if named - (Counter(question.split()) + Counter(answer_words)):
        return False
    rest = iter(said)
    return all(w in rest for w in answer_content(question, answer))  # a subsequence


def answer_content(question: str, answer: str) -> list[str]:
    """The answer's content words: its words left once the question's words and the
    templates' fillers are taken out ("what color is the coal" / "the coal is black" ->
    ["black"]); for an answer that only repeats the question ("say X" -> "X"), its words
    but the fillers."""
    left = Counter(question.split())
    content = []
    for w in answer.split():
        if left[w] > 0:
            left[w] -= 1
        elif w not in _ANSWER_FILLERS:
            content.append(w)
    return content or [w for w in answer.split() if w not in _ANSWER_FILLERS]


def fact(exchange: Exchange) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """What an exchange teaches, whatever its templates: its kind, the slot words of its
    question and its answer's content ("what is the day after monday" and "what day comes
    after monday" -> ("days", ("monday",), ("tuesday",)))."""
    slots = tuple(w for w in exchange.question.split() if w in _SLOT_WORDS)
    return exchange.kind, slots, tuple(answer_content(exchange.question, exchange.answer))
