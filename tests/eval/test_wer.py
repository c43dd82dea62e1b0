import pytest

from moshi.eval.wer import Errors, corpus_wer, matched_words, timed_word_errors, word_errors


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


def test_matched_words_pair_equal_words_in_order():
    assert matched_words(["a", "b", "c", "d"], ["a", "x", "c", "d", "e"]) == [(0, 0), (2, 2), (3, 3)]
    assert matched_words(["a", "a", "b"], ["a", "b"]) == [(0, 0), (2, 1)]
    assert matched_words([], ["a"]) == []


def test_timed_word_errors_on_a_synthetic_transcript():
    truth = [[("what", 0.30), ("is", 0.72), ("two", 1.00), ("plus", 1.40), ("two", 1.90)]]
    # "is" is missed, "three" replaces the last "two"; the three matched words are 40, 80
    # and 20 ms off.
    heard = [[("what", 0.34), ("two", 0.92), ("plus", 1.42), ("three", 1.88)]]
    errors, starts = timed_word_errors(truth, heard)
    assert errors == Errors(1, 1, 0, 5)
    assert starts == pytest.approx([0.04, 0.08, 0.02])
