"""What a corpus holds, decided up front from one seed: every file's text, voice and own seed.

Rendering (`moshi.data.build`) then only reads these items, in any order and in any process,
so the corpus depends on the seed alone. Splits: training items use training voices and
sentences; held-out items use held-out voices (users) and held-out sentences. Moshi's voice
is its persona in both.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .dialogue import DialogueSpec
from .grammar import RULES, is_heldout, sample_exchange, sample_sentence
from .synth import Voice, voices_of
from .vocabulary import BACKCHANNELS

SPLITS = ("train", "heldout")
KINDS = ("dialogues", "stt", "tts")  # stereo dialogues; mono users (many voices); mono Moshi
MAX_EXCHANGES = 4
P_GREETING = 0.4  # Moshi greets first in this share of dialogues


@dataclass(frozen=True)
class Item:
    split: str  # in SPLITS
    kind: str  # in KINDS
    index: int
    voice: Voice  # the user's (dialogues, stt) or Moshi's (tts)
    text: str  # mono items: what is said
    seed: int  # of its rendering (pauses, augmentation)
    dialogue: DialogueSpec | None = None

    @property
    def stem(self) -> str:
        """The path of its files, relative to the corpus root, without the extension."""
        return f"{self.split}/{self.kind}/{self.index:06d}"

    def words(self) -> dict[str, set[str]]:
        """{"user": words in the user's voice, "moshi": in Moshi's}."""
        if self.dialogue is None:
            return {"moshi" if self.kind == "tts" else "user": set(self.text.split())}
        user = {w for ex in self.dialogue.exchanges for w in ex.question.split()} | _BACKCHANNEL_WORDS
        moshi = {w for ex in self.dialogue.exchanges for w in ex.answer.split()}
        return {"user": user, "moshi": moshi | set((self.dialogue.greeting or "").split())}


def _greetings(heldout: bool) -> tuple[str, ...]:
    """Moshi's opening lines of a split (training ones are no held-out sentence)."""
    return tuple(a for r in RULES if r.kind == "greeting" for a in r.answers if heldout or not is_heldout(a))


_BACKCHANNEL_WORDS = {w for b in BACKCHANNELS for w in b.split()}


def split_counts(n: int, heldout_fraction: float) -> dict[str, int]:
    """n items -> {"train": ..., "heldout": ...}, at least one held out when n > 0."""
    held = min(n, math.ceil(n * heldout_fraction))
    return {"train": n - held, "heldout": held}


def plan(
    seed: int, n_dialogues: int, n_utterances: int, n_tts: int, heldout_fraction: float, moshi: Voice
) -> list[Item]:
    """Every item of the corpus, in a fixed order."""
    items: list[Item] = []
    for kind, n in (("dialogues", n_dialogues), ("stt", n_utterances), ("tts", n_tts)):
        for split, count in split_counts(n, heldout_fraction).items():
            rng = random.Random(f"{seed}:{split}:{kind}")
            held = split == "heldout"
            users = voices_of(held)
            for i in range(count):
                voice = moshi if kind == "tts" else rng.choice(users)
                if kind == "dialogues":
                    k = rng.randint(1, MAX_EXCHANGES)
                    exchanges = tuple(sample_exchange(rng, held) for _ in range(k))
                    greet = rng.choice(_greetings(held)) if rng.random() < P_GREETING else None
                    spec = DialogueSpec(exchanges, greet, rng.getrandbits(32))
                    items.append(Item(split, kind, i, voice, "", spec.seed, spec))
                else:
                    text = sample_sentence(rng, held)
                    items.append(Item(split, kind, i, voice, text, rng.getrandbits(32)))
    return items
