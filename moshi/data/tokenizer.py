"""The text tokenizer of the small family (issue 13): a SentencePiece word model of the
corpus grammar's vocabulary (`vocab.txt`), one piece per word, so that a word is one text
token (one 80 ms step of the text stream).

Its ids follow Kyutai's: 0 `<unk>` (also the LM's end-of-padding token), 1 `<s>`, 2 `</s>`,
3 `<pad>` (the LM's padding token), then the words. Rebuilt from the same vocabulary it is
the same file, byte for byte.
"""

from __future__ import annotations

import io
from pathlib import Path

VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.model"
SPECIAL_PIECES = 4  # <unk>, <s>, </s>, <pad>


def write_tokenizer(corpus_dir: str | Path, out: str | Path | None = None) -> Path:
    """Train the word model on `corpus_dir/vocab.txt`; write it to `out` (default
    `corpus_dir/tokenizer.model`) and return that path."""
    import sentencepiece

    corpus = Path(corpus_dir)
    vocab = corpus / VOCAB_FILE
    if not vocab.is_file():
        raise FileNotFoundError(f"no {VOCAB_FILE} in {corpus} (made by `moshi data build`)")
    words = sorted(set(vocab.read_text().split()))
    if not words:
        raise ValueError(f"{vocab} lists no words")
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(words),
        model_writer=model,
        model_type="word",
        vocab_size=len(words) + SPECIAL_PIECES,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=3,
        character_coverage=1.0,
        normalization_rule_name="identity",  # the grammar is lower case already (and the file small)
        num_threads=1,
        minloglevel=2,
    )
    path = Path(out) if out is not None else corpus / TOKENIZER_FILE
    path.write_bytes(model.getvalue())
    return path
