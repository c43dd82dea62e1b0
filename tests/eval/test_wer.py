import pytest

from moshi.eval.wer import Errors, corpus_wer, word_errors


@pytest.mark.parametrize(
    ("ref", "hyp", "expected"),
    [
        ("a b c", "a b c", Errors(0, 0, 0, 3)),
        ("a b c", "a x c", Errors(1, 0, 0, 3)),
        ("a b c", "a c", Errors(0, 1, 0, 3)),
        ("a b c", "a b c d", Errors(0, 0, 1, 3)),
        ("a b c", "", Errors(0, 3, 0, 3)),
        ("", "a", Errors(0, 0, 1, 0)),
        ("what is two plus two", "is two plus three", Errors(1, 1, 0, 5)),
        ("it is seven", "it is seventy seven", Errors(0, 0, 1, 3)),
        ("one two", "three four", Errors(2, 0, 0, 2)),
    ],
)
def test_word_errors(ref, hyp, expected):
    assert word_errors(ref, hyp) == expected


def test_rates():
    assert word_errors("a b c d", "a b").rate == 0.5
    assert word_errors("", "").rate == 0.0 and word_errors("", "x").rate == 1.0
    assert corpus_wer([("a b", "a b"), ("c d e f", "c")]) == pytest.approx(3 / 6)
