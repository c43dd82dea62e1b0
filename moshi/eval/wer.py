"""Word error rate: the fewest substitutions, deletions and insertions turning the reference
into the hypothesis (Levenshtein over words), over the reference's length."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Errors:
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_words: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """errors / reference words (an empty reference: 0 when nothing was inserted, else 1)."""
        if self.reference_words == 0:
            return float(self.insertions > 0)
        return self.errors / self.reference_words

    def __add__(self, other: Errors) -> Errors:
        return Errors(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.reference_words + other.reference_words,
        )


def word_errors(reference: str | list[str], hypothesis: str | list[str]) -> Errors:
    """The edit operations of a minimal alignment (ties prefer substitutions)."""
    ref = reference.split() if isinstance(reference, str) else list(reference)
    hyp = hypothesis.split() if isinstance(hypothesis, str) else list(hypothesis)
    # cost[j] = (total, subs, dels, ins) aligning ref[:i] with hyp[:j]; one row kept.
    row = [(j, 0, 0, j) for j in range(len(hyp) + 1)]
    for i in range(1, len(ref) + 1):
        new = [(i, 0, i, 0)]
        for j in range(1, len(hyp) + 1):
            same = ref[i - 1] == hyp[j - 1]
            diag = row[j - 1]
            cands = [
                (diag[0] + (not same), diag[1] + (not same), diag[2], diag[3]),
                (row[j][0] + 1, row[j][1], row[j][2] + 1, row[j][3]),
                (new[j - 1][0] + 1, new[j - 1][1], new[j - 1][2], new[j - 1][3] + 1),
            ]
            new.append(min(cands, key=lambda c: c[0]))
        row = new
    _, s, d, n_ins = row[-1]
    return Errors(s, d, n_ins, len(ref))


def corpus_wer(pairs: list[tuple[str, str]]) -> float:
    """Errors over all (reference, hypothesis) pairs / their reference words."""
    total = sum((word_errors(r, h) for r, h in pairs), Errors())
    return total.rate


def matched_words(reference: list[str], hypothesis: list[str]) -> list[tuple[int, int]]:
    """(i, j) pairs of the words a longest common subsequence matches: reference[i] ==
    hypothesis[j], both in order; what word times are compared on."""
    n, m = len(reference), len(hypothesis)
    lcs = [[0] * (m + 1) for _ in range(n + 1)]  # lcs[i][j]: of reference[i:] and hypothesis[j:]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            same = reference[i] == hypothesis[j]
            lcs[i][j] = lcs[i + 1][j + 1] + 1 if same else max(lcs[i + 1][j], lcs[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if reference[i] == hypothesis[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif lcs[i + 1][j] >= lcs[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def timed_word_errors(
    truths: list[list[tuple[str, float]]], heard: list[list[tuple[str, float]]]
) -> tuple[Errors, list[float]]:
    """Transcripts (word, start seconds) against the true ones: the word errors, and the
    start-time errors (seconds) of the words both agree on (`matched_words`)."""
    total, starts = Errors(), []
    for truth, words in zip(truths, heard, strict=True):
        ref, hyp = [w for w, _ in truth], [w for w, _ in words]
        total += word_errors(ref, hyp)
        starts += [abs(words[j][1] - truth[i][1]) for i, j in matched_words(ref, hyp)]
    return total, starts
