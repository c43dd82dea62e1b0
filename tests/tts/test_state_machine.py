"""The word feeder: against Kyutai's own on fixed scenarios, then rule by rule."""

import json

import pytest

from moshi.tts.script import Entry, ScriptBuilder, break_steps, split_complete
from moshi.tts.state_machine import NEW_WORD, PAD, WordStateMachine
from moshi.tts.text_input import Feeder, TextInput
from tests.support.fixtures import FIXTURES

REFERENCE = json.loads((FIXTURES / "tts_state_machine.json").read_text())


@pytest.mark.parametrize("case", REFERENCE, ids=lambda c: f"{c['script'][0][:12]}-pb{c['padding_between']}")
def test_matches_the_reference(case, tokenizer):
    builder = ScriptBuilder(tokenizer.encode, multi_speaker=True, padding_between=case["padding_between"])
    entries = builder.script(case["script"])
    assert [[list(e.tokens), e.text, e.padding] for e in entries] == case["entries"]
    m = WordStateMachine(entries, max_padding=case["max_padding"], initial_padding=case["initial_padding"])
    assert [m.process(step, t) for step, t in enumerate(case["predicted"])] == case["fed"]
    assert [step for _, step in m.consumed] == case["consumption_steps"]
    assert m.transcript == [tuple(x) for x in case["transcript"]]
    assert m.end_step == case["end_step"]


def word(tokens, padding=0, text="w"):
    return Entry(tuple(tokens), text, padding)


def run(machine, predicted):
    return [machine.process(step, t) for step, t in enumerate(predicted)]


def test_initial_padding_then_the_word_tokens():
    m = WordStateMachine([word([7, 8], padding=2)], max_padding=8, initial_padding=2)
    assert run(m, [NEW_WORD] * 6) == [PAD, PAD, NEW_WORD, 7, 8, PAD]
    assert m.end_step == 5 and m.transcript == [("w", 2)]


def test_the_budget_forces_the_next_word():
    m = WordStateMachine([word([7]), word([9])], max_padding=3, initial_padding=0)
    # the model only ever says "pad": the words come every max_padding steps anyway
    assert run(m, [PAD] * 9) == [NEW_WORD, 7, PAD, PAD, NEW_WORD, 9, PAD, PAD, PAD]
    assert [s for _, s in m.consumed] == [0, 4] and m.end_step == 8


def test_other_predictions_count_as_pad():
    m = WordStateMachine([word([7])], max_padding=8, initial_padding=0)
    assert run(m, [42, NEW_WORD, 5]) == [NEW_WORD, 7, PAD]


def test_a_break_pads_for_its_length_then_a_word_starts():
    brk = Entry((), "", 5)
    m = WordStateMachine([brk, word([7])], max_padding=2, initial_padding=0)
    fed = run(m, [NEW_WORD] * 8)
    assert fed == [PAD, PAD, PAD, PAD, PAD, NEW_WORD, 7, PAD]  # a break is fed as padding
    assert m.transcript == [("w", 5)] and [s for _, s in m.consumed] == [0, 5]


def test_padding_between_words():
    m = WordStateMachine([word([7, 8], padding=3), word([9], padding=1)], max_padding=8, initial_padding=0)
    # the first word forces 3 steps: its 2 tokens then one pad; the model cannot cut in
    assert run(m, [NEW_WORD] * 7) == [NEW_WORD, 7, 8, PAD, NEW_WORD, 9, PAD]


def test_running_out_of_words_ends_once_and_pads():
    m = WordStateMachine([word([7])], max_padding=8, initial_padding=0)
    assert run(m, [NEW_WORD] * 5) == [NEW_WORD, 7, PAD, PAD, PAD]
    assert m.end_step == 2


def test_incremental_text_waits_instead_of_ending():
    m = WordStateMachine(max_padding=2, initial_padding=0, complete=False)
    fed = [m.process(step, NEW_WORD) for step in range(4)]
    assert fed == [PAD] * 4 and m.end_step is None and m.waiting
    m.push([word([7], text="late")])
    assert not m.waiting
    assert [m.process(step, PAD) for step in range(4, 7)] == [NEW_WORD, 7, PAD]
    assert m.transcript == [("late", 4)] and m.end_step is None
    m.close()
    assert m.process(7, PAD) == PAD and m.process(8, NEW_WORD) == PAD  # the end pads
    assert m.end_step == 7  # the budget ran out at step 7: the text is done
    with pytest.raises(RuntimeError, match="complete"):
        m.push([word([1])])


def test_speaker_tokens_on_turn_changes(tokenizer):
    b = ScriptBuilder(tokenizer.encode, multi_speaker=True, padding_between=1)
    entries = b.script(["qu qu", "", "", "qu", '<break time="1s"/>', "", "qu"])
    # turns alternate main (1) / other (2) by index; empty turns and turns with only a
    # break change nothing: turn 3 is the other speaker, turn 6 the main one again
    assert [e.tokens for e in entries] == [(1, 4), (4,), (2, 4), (), (1, 4)]
    assert [e.padding for e in entries] == [2, 1, 2, 12, 2]
    single = ScriptBuilder(tokenizer.encode, multi_speaker=False, padding_between=0).script(["qu", "qu"])
    assert [e.tokens for e in single] == [(4,), (4,)] and [e.padding for e in single] == [0, 0]


def test_punctuation_and_breaks(tokenizer):
    b = ScriptBuilder(tokenizer.encode, multi_speaker=False, padding_between=1)
    entries = b.text('a:b (x) it\u2019s c<break time="0.2s"/>d')
    assert [e.text for e in entries] == ["a", "b", "x", "it's", "c", "", "d"]
    assert entries[5] == Entry((), "", 2)  # round(2.5) = 2, as Python rounds
    assert break_steps('<break time="0.6s" />') == 8
    for bad in ('<break time="500ms"/>', "<break time='1s'/>", "<break/>"):
        with pytest.raises(ValueError, match="malformed break"):
            b.text(f"a {bad} b")


@pytest.mark.parametrize(
    "buffer, done, rest",
    [
        ("hello wor", "hello ", "wor"),
        ("hello world ", "hello world ", ""),
        ('a <break time="0.5', "a ", '<break time="0.5'),
        ('a <break time="0.5s"/>b', 'a <break time="0.5s"/>', "b"),
        ("x < y z", "x < y ", "z"),
        ("nospace", "", "nospace"),
    ],
)
def test_split_complete(buffer, done, rest):
    assert split_complete(buffer) == (done, rest)


def test_text_arriving_in_pieces_gives_the_same_entries(tokenizer):
    script = 'hokopily qu <break time="0.5s"/> zihogequ midaba'
    whole = ScriptBuilder(tokenizer.encode, True, 1).text(script)
    source = TextInput()
    feeder = Feeder(ScriptBuilder(tokenizer.encode, True, 1), WordStateMachine(complete=False), source)
    for i in range(0, len(script), 3):  # cut anywhere, words and tags included
        source.write(script[i : i + 3])
        feeder.poll()
    assert list(feeder.machine.entries) == whole[:-1]  # the last word may still grow
    assert not feeder.machine.complete
    source.close()
    feeder.poll()
    assert list(feeder.machine.entries) == whole and feeder.machine.complete


def test_new_turns_alternate_speakers(tokenizer):
    source = TextInput()
    feeder = Feeder(ScriptBuilder(tokenizer.encode, True, 1), WordStateMachine(complete=False), source)
    source.write("qu qu")
    source.new_turn()
    source.write("qu")
    source.close()
    feeder.poll()
    assert [e.tokens for e in feeder.machine.entries] == [(1, 4), (4,), (2, 4)]
