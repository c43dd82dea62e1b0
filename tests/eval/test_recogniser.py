"""pocketsphinx with the corpus grammar reads held-out sentences spoken by a synthesiser."""

import random
import shutil

import pytest

from moshi.data.grammar import sample_sentence
from moshi.data.jsgf import jsgf, lexicon
from moshi.data.synth import FAST_MOSHI_VOICE, synth_words
from moshi.data.utterance import speak
from moshi.eval.wer import Errors, word_errors

pytest.importorskip("pocketsphinx", reason='needs the eval extra: pip install -e ".[eval]"')
pytestmark = pytest.mark.skipif(not shutil.which("flite"), reason="needs flite (./install.sh installs it)")


def test_recogniser_reads_heldout_sentences(tmp_path):
    from moshi.eval.recogniser import Recogniser

    (tmp_path / "grammar.jsgf").write_text(jsgf())
    (tmp_path / "lexicon.dic").write_text(lexicon())
    recogniser = Recogniser(tmp_path)
    rng = random.Random(0)
    sentences = [sample_sentence(rng, heldout=True) for _ in range(3)]
    total = Errors()
    for text in sentences:
        words = text.split()
        pcm, truth = speak(words, synth_words(FAST_MOSHI_VOICE, sorted(set(words))), rng)
        heard = recogniser.recognise(pcm)
        total += word_errors(words, [w.word for w in heard])
        if [w.word for w in heard] == words:
            assert all(abs(h.start - t.start) < 0.1 for h, t in zip(heard, truth, strict=True))
    assert total.rate <= 0.2, sentences
