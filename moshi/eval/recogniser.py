"""An independent speech recogniser: pocketsphinx (CMU's, English acoustic model and CMUdict
in its wheel), constrained by the corpus grammar (`grammar.jsgf` written by `moshi data
build`), so that its errors measure the audio and not an open-vocabulary language model.

Needs the `eval` extra (`pip install -e ".[eval]"`; ./install.sh includes it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, resample

PS_RATE = 16_000  # pocketsphinx's acoustic model
PS_FRAME_S = 0.01  # its frames
TOP_RULE = "sentence"
_FILLERS = {"<s>", "</s>", "<sil>", "[NOISE]", "(NULL)"}
_LANGUAGE_WEIGHT = 7.5


@dataclass(frozen=True)
class RecognisedWord:
    word: str
    start: float  # seconds
    end: float


class Recogniser:
    """`Recogniser(corpus_dir)` reads `grammar.jsgf` and `lexicon.dic` there;
    `recognise(pcm)` -> the words of one sentence with their times."""

    def __init__(self, corpus_dir: str | Path) -> None:
        try:
            import pocketsphinx
        except ImportError as e:
            raise RuntimeError('pocketsphinx is missing: pip install -e ".[eval]"') from e
        root = Path(corpus_dir)
        grammar = root / "grammar.jsgf"
        if not grammar.is_file():
            raise FileNotFoundError(f"no grammar.jsgf in {root} (made by `moshi data build`)")
        self._decoder = pocketsphinx.Decoder(lm=None, samprate=PS_RATE, loglevel="FATAL")
        lexicon = root / "lexicon.dic"
        for line in lexicon.read_text().splitlines() if lexicon.is_file() else []:
            word, phones = line.split(maxsplit=1)
            self._decoder.add_word(word, phones, True)
        jsgf = pocketsphinx.Jsgf(str(grammar))
        name = grammar.read_text().split("grammar ", 1)[1].split(";", 1)[0].strip()
        fsg = jsgf.build_fsg(jsgf.get_rule(f"{name}.{TOP_RULE}"), self._decoder.logmath, _LANGUAGE_WEIGHT)
        self._decoder.add_fsg(TOP_RULE, fsg)
        self._decoder.activate_search(TOP_RULE)

    def recognise(self, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[RecognisedWord]:
        """[T] float mono -> the recognised words (an empty list when it hears no sentence)."""
        if pcm.ndim != 1:
            raise ValueError(f"expected mono pcm [T], got shape {list(pcm.shape)}")
        pcm16 = (np.clip(resample(pcm, sample_rate, PS_RATE), -1.0, 1.0) * 32767).astype(np.int16)
        d = self._decoder
        d.start_utt()
        d.process_raw(pcm16.tobytes(), full_utt=True)
        d.end_utt()
        if d.hyp() is None:
            return []
        return [
            RecognisedWord(s.word.split("(")[0], s.start_frame * PS_FRAME_S, (s.end_frame + 1) * PS_FRAME_S)
            for s in d.seg()
            if s.word not in _FILLERS
        ]

    def transcribe(self, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> str:
        return " ".join(w.word for w in self.recognise(pcm, sample_rate))
