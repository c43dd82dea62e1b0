"""The small family's text tokenizer: one piece per word of the corpus grammar, Kyutai's
special ids, the same bytes when rebuilt."""

from pathlib import Path

import pytest

from moshi.data import jsgf
from moshi.data.tokenizer import SPECIAL_PIECES, write_tokenizer
from moshi.lm.config import KyutaiConfig
from moshi.lm.text import TextTokenizer

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "small"


def test_one_piece_per_word_and_kyutai_special_ids(tmp_path):
    (tmp_path / "vocab.txt").write_text("hello\nworld\no'clock\na\n")
    path = write_tokenizer(tmp_path)
    assert path == tmp_path / "tokenizer.model"
    tok = TextTokenizer(path)
    assert tok.vocab_size == 4 + SPECIAL_PIECES
    assert [tok.sp.id_to_piece(i) for i in range(4)] == ["<unk>", "<s>", "</s>", "<pad>"]
    ids = tok.encode("hello o'clock a world")
    assert len(ids) == 4 and min(ids) >= SPECIAL_PIECES and tok.decode(ids) == "hello o'clock a world"
    assert write_tokenizer(tmp_path, tmp_path / "again.model").read_bytes() == path.read_bytes()


def test_missing_vocabulary_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no vocab\.txt"):
        write_tokenizer(tmp_path)


@pytest.mark.parametrize("task", ["stt", "tts", "dialogue"])
def test_recipe_models_read_the_grammar_tokenizer(task):
    words = jsgf.vocabulary()
    config = KyutaiConfig.load(RECIPES / f"{task}.json").lm
    assert config.text_card >= len(words) + SPECIAL_PIECES
    assert (config.text_padding_id, config.text_end_padding_id) == (3, 0)  # <pad>, <unk>
