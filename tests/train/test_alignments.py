"""moshi-finetune's manifest and alignments files: reading, writing, and errors naming the
file and what is wrong."""

import json
from pathlib import Path

import pytest

from moshi.train.alignments import (
    AlignedWord,
    DataError,
    Entry,
    channel_words,
    check_within,
    read_alignments,
    read_manifest,
    write_alignments,
    write_manifest,
)


def test_manifest_paths_are_relative_to_its_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    out = tmp_path / "sub" / "data.jsonl"
    out.write_text('{"path": "a/x.wav", "duration": 2}\n\n{"path": "/abs/y.wav", "duration": 1.5}\n')
    assert read_manifest(out) == [
        Entry(tmp_path / "sub" / "a" / "x.wav", 2.0),
        Entry(Path("/abs/y.wav"), 1.5),
    ]
    assert read_manifest(out)[0].alignments_path == tmp_path / "sub" / "a" / "x.json"
    again = tmp_path / "sub" / "again.jsonl"
    write_manifest(again, read_manifest(out))
    assert json.loads(again.read_text().splitlines()[0]) == {"path": "a/x.wav", "duration": 2.0}
    assert read_manifest(again) == read_manifest(out)


@pytest.mark.parametrize(
    "line, message",
    [
        ("{oops", "data.jsonl:2: not valid JSON"),
        ('{"file": "x.wav"}', 'data.jsonl:2: expected {"path": "x.wav", "duration": seconds}'),
        ('{"path": "x.wav", "duration": "long"}', "data.jsonl:2: duration must be a number"),
        (
            '{"path": "x.wav", "duration": 1, "channel": 2}',
            "data.jsonl:2: channel must be 0 .* or 1 .*, got 2",
        ),
        ('{"path": "x.wav", "duration": 1, "channel": true}', "data.jsonl:2: channel must be 0 .*, got True"),
    ],
)
def test_a_bad_manifest_line_is_named(tmp_path, line, message):
    path = tmp_path / "data.jsonl"
    path.write_text('{"path": "ok.wav", "duration": 1}\n' + line + "\n")
    with pytest.raises(DataError, match=message.replace("{", "\\{").replace("}", "\\}").replace("(", "\\(")):
        read_manifest(path)


def test_a_line_may_name_one_channel_of_a_dialogue(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(
        '{"path": "d.wav", "duration": 3, "channel": 1}\n{"path": "d.wav", "duration": 3, "channel": 0}\n'
    )
    entries = read_manifest(path)
    assert [e.channel for e in entries] == [1, 0]
    write_manifest(tmp_path / "again.jsonl", entries)
    assert read_manifest(tmp_path / "again.jsonl") == entries
    with pytest.raises(ValueError, match=r"channel must be 0 \(Moshi's, left\) or 1 \(the user's\), got 2"):
        Entry(Path("d.wav"), 3.0, 2)
    words = [AlignedWord("hi", 0, 1), AlignedWord("yo", 1, 2, "SPEAKER_USER"), AlignedWord("so", 2, 3)]
    assert [w.text for w in channel_words(words, 0)] == ["hi", "so"]  # Moshi's, on the left
    assert [w.text for w in channel_words(words, 1)] == ["yo"]  # every other speaker's


def test_alignments_round_trip(tmp_path):
    words = [AlignedWord("hi", 0.1, 0.25), AlignedWord("yo", 0.5, 0.75, "SPEAKER_OTHER")]
    path = tmp_path / "x.json"
    write_alignments(path, words)
    assert json.loads(path.read_text()) == {
        "alignments": [["hi", [0.1, 0.25], "SPEAKER_MAIN"], ["yo", [0.5, 0.75], "SPEAKER_OTHER"]]
    }
    assert read_alignments(path) == words
    path.write_text('{"alignments": [["hi", [0.1, 0.25]]]}')  # no speaker: the main one
    assert read_alignments(path) == words[:1]


@pytest.mark.parametrize(
    "text, reason, message",
    [
        (None, "missing alignments", "missing alignments file"),
        ("{", "bad alignments", "unreadable alignments"),
        ('{"words": []}', "bad alignments", "expected {"),
        ('{"alignments": [["hi", [0.1]]]}', "bad alignments", "alignment 0 is not"),
        ('{"alignments": [["hi", [0.1, "x"], "A"]]}', "bad alignments", "alignment 0 is not"),
        ('{"alignments": [[1, [0.1, 0.2], "A"]]}', "bad alignments", "alignment 0 is not"),
        ('{"alignments": [["hi", [0.1, NaN], "A"]]}', "bad alignments", "alignment 0 is not"),
    ],
)
def test_bad_alignments_name_the_file_and_problem(tmp_path, text, reason, message):
    path = tmp_path / "x.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(DataError) as e:
        read_alignments(path)
    assert e.value.reason == reason and str(path) in str(e.value) and message in str(e.value)


def test_words_must_lie_in_the_audio():
    check_within([AlignedWord("hi", 0.0, 1.05)], 1.0, "x.json", slack=0.08)
    for word in (AlignedWord("hi", -0.1, 0.5), AlignedWord("late", 0.5, 1.1)):
        with pytest.raises(DataError, match=f"x.json: word '{word.text}' .* lies outside the audio"):
            check_within([word], 1.0, "x.json", slack=0.08)
