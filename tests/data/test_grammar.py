"""The grammar: seeded, correct answers, and held-out sentences and voices never in training."""

import random

import pytest

from moshi.data import grammar, jsgf, vocabulary
from moshi.data.plan import plan
from moshi.data.synth import FAST_MOSHI_VOICE, voices_of

_NUMBER = {vocabulary.number_words(n): n for n in range(100)}


def _sample(seed: int, n: int, heldout: bool) -> list[grammar.Exchange]:
    rng = random.Random(seed)
    return [grammar.sample_exchange(rng, heldout) for _ in range(n)]


def test_same_seed_same_exchanges_other_seed_others():
    assert _sample(3, 50, False) == _sample(3, 50, False)
    assert _sample(3, 50, False) != _sample(4, 50, False)


def test_heldout_sentences_never_in_training():
    train = _sample(0, 3000, False)
    held = _sample(0, 300, True)
    train_sentences = {s for ex in train for s in (ex.question, ex.answer)}
    assert not any(grammar.is_heldout(s) for s in train_sentences)
    assert all(grammar.is_heldout(ex.question) for ex in held)
    assert not {ex.question for ex in held} & train_sentences
    assert len({ex.kind for ex in held}) >= 8  # every kind of question is held out somewhere


def test_arithmetic_and_spelling_answers_are_right():
    checked = 0
    for ex in _sample(1, 3000, False):
        q = ex.question
        for op, f in ((" plus ", int.__add__), (" minus ", int.__sub__), (" times ", int.__mul__)):
            if op in q and q.startswith("what is ") and ex.answer.startswith(q[len("what is ") :] + " is "):
                a, b = q[len("what is ") :].split(op)
                assert _NUMBER[ex.answer.split(" is ")[-1]] == f(_NUMBER[a], _NUMBER[b]), ex
                checked += 1
        if ex.kind == "spell" and " is spelled " in ex.answer:
            word, letters = ex.answer.split(" is spelled ")
            assert letters.replace(" ", "") == word
    assert checked > 20


def test_vocabulary_covers_every_sentence_and_is_big_enough():
    vocab = set(jsgf.vocabulary())
    assert len(vocab) > 250
    for ex in _sample(2, 2000, False) + _sample(2, 200, True):
        assert set(ex.question.split()) <= vocab and set(ex.answer.split()) <= vocab, ex
    assert "public <sentence>" in jsgf.jsgf()


def test_voices_and_plan_split():
    held, train = voices_of(True), voices_of(False)
    assert held and train and not {v.id for v in held} & {v.id for v in train}
    items = plan(0, n_dialogues=10, n_utterances=20, n_tts=4, heldout_fraction=0.2, moshi=FAST_MOSHI_VOICE)
    assert items == plan(0, 10, 20, 4, 0.2, FAST_MOSHI_VOICE)
    for it in items:
        if it.kind == "tts":
            assert it.voice == FAST_MOSHI_VOICE
        else:
            assert (it.voice in held) == (it.split == "heldout")


def test_heldout_voices_are_unheard_variants():
    """A held-out espeak voice's variant (its timbre) is in no training voice, whatever the
    accent, speed or pitch, and flite's held-out voice is flite's only one of its kind."""
    held, train = voices_of(True), voices_of(False)
    assert len(train) >= 60
    variant = {v.id: v.name.split("+")[1] for v in (*held, *train) if v.engine == "espeak"}
    held_variants = {variant[v.id] for v in held if v.id in variant}
    assert len(held_variants) == 4
    assert not held_variants & {variant[v.id] for v in train if v.id in variant}
    assert not {v.name for v in held if v.engine == "flite"} & {v.name for v in train if v.engine == "flite"}


@pytest.mark.parametrize(
    ("question", "answer", "reply", "correct"),
    [
        ("how much is four minus three", "it is one", "it is one", True),
        ("how much is four minus three", "it is one", "four minus three is one", True),  # another template
        ("how much is four minus three", "it is one", "it is two", False),
        ("what is zero plus five", "zero plus five is five", "it is five", True),  # content: the last five
        ("say cat", "cat", "cat", True),
        ("say cat", "cat", "dog", False),
        ("spell the word rain", "rain is spelled r a i n", "r a i n", True),
        ("spell the word rain", "rain is spelled r a i n", "r i n", False),
        ("is the bear green", "no the bear is brown", "yes the bear is brown", False),
        ("how are you", "i am fine thank you", "i am doing well thanks", True),  # any small-talk answer
        ("how are you", "i am fine thank you", "my name is moshi", False),
        ("what is one plus one", "it is two", "", False),
        ("what is one plus one", "it is two", "two two two two two two two", False),  # babble
        ("what color is the coal", "black", "it is black", True),  # another template, longer
        ("what color is the coal", "black", "the coal is black", True),
        ("what color is the coal", "black", "black white red", False),  # a list of colours
        ("what color is the coal", "black", "it is black and white", False),
        ("is two bigger than one", "yes two is bigger than one", "yes two is smaller than one", False),
        ("what day comes after monday", "tuesday", "the day after monday is tuesday", True),
        ("what day comes after monday", "tuesday", "it is tuesday hi there what can i do for you", False),
    ],
)
def test_reply_is_correct(question, answer, reply, correct):
    assert grammar.reply_is_correct(question, answer, reply) is correct


def test_every_answer_is_a_correct_reply():
    for ex in _sample(5, 500, False) + _sample(5, 200, True):
        assert grammar.reply_is_correct(ex.question, ex.answer, ex.answer), ex


def test_a_fact_is_the_same_whatever_its_phrasing():
    after = [grammar.Exchange("days", q, a) for q, a in (
        ("what is the day after monday", "the day after monday is tuesday"),
        ("what day comes after monday", "tuesday"),
        ("what day comes after monday", "it is tuesday"),
    )]  # fmt: skip
    assert {grammar.fact(ex) for ex in after} == {("days", ("monday",), ("tuesday",))}
    before = grammar.Exchange("days", "what day comes before monday", "it is sunday")
    assert grammar.fact(before) != grammar.fact(after[0])  # another fact: the answer differs
    light = grammar.Exchange("yesno", "is an elephant light", "no an elephant is heavy")
    assert grammar.fact(light) == ("yesno", ("elephant", "light"), ("no", "heavy"))
    assert grammar.answer_content("say planet", "planet") == ["planet"]


def test_heldout_facts_recipe(capsys):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).parents[2] / "recipes" / "small" / "heldout_facts.py"
    spec = importlib.util.spec_from_file_location("heldout_facts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--seed", "13", "--dialogues", "300", "--heldout-fraction", "0.1"]) == 0
    rows = {r["kind"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["yesno"]["fact_in_training"] == 0.0  # one template: a held-out question is never asked
    assert 0.0 < rows["all"]["fact_in_training"] < 1.0 and rows["all"]["questions"] > 0
