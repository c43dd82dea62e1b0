"""Text tokens: SentencePiece, and the pieces shown to people as Moshi speaks."""

from __future__ import annotations

from pathlib import Path

from .config import LMConfig

SPACE_MARK = "\u2581"  # SentencePiece's "▁": a word starts here


class TextTokenizer:
    """A SentencePiece model, with `piece(token)` giving what to display for one token:
    the piece with "▁" shown as a space, or None for padding tokens (PAD, end-of-padding)
    and control pieces. `user_turns`: the model's text also writes down the user's words,
    from EOS (`user_turn_id`) to BOS (`moshi_turn_id`); see `Turns`."""

    def __init__(
        self,
        path: str | Path,
        hidden_ids: tuple[int, ...] = (LMConfig.text_end_padding_id, LMConfig.text_padding_id),
        user_turns: bool = False,
    ):
        import sentencepiece

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such tokenizer file: {path}")
        try:
            self.sp = sentencepiece.SentencePieceProcessor(model_file=str(path))
        except (RuntimeError, OSError) as e:
            raise ValueError(f"{path} is not a SentencePiece model: {e}") from e
        self.hidden_ids = frozenset(hidden_ids)
        self.user_turns = user_turns
        if user_turns and not self.has_turn_markers:
            raise ValueError(
                f"a model that writes the user's words needs <s> and </s> in its tokenizer; {path} has none"
            )

    @property
    def has_turn_markers(self) -> bool:
        """Whether it has <s> and </s>, which mark whose words follow (`user_turns`)."""
        return min(self.moshi_turn_id, self.user_turn_id) >= 0

    @property
    def moshi_turn_id(self) -> int:
        return int(self.sp.bos_id())

    @property
    def user_turn_id(self) -> int:
        return int(self.sp.eos_id())

    @property
    def vocab_size(self) -> int:
        return int(self.sp.get_piece_size())

    def encode(self, text: str) -> list[int]:
        return list(self.sp.encode(text, out_type=int))

    def piece(self, token: int) -> str | None:
        """The displayable text of one token; None for padding, control pieces such as
        `</s>`, and out-of-vocabulary ids."""
        if token in self.hidden_ids or not 0 <= token < self.vocab_size or self.sp.is_control(token):
            return None
        return self.sp.id_to_piece(token).replace(SPACE_MARK, " ")

    def decode(self, tokens: list[int]) -> str:
        """Text of a token sequence, padding dropped."""
        return self.sp.decode([t for t in tokens if t not in self.hidden_ids and 0 <= t < self.vocab_size])


class Turns:
    """Whose words a dialogue model's text tokens are, one conversation at a time.

    A model whose config has `dialogue_config.user_text_delay_seconds` writes the user's words
    in its text too (train/text_stream.py), as they are heard: EOS starts them, BOS starts
    Moshi's again. `split(token)` -> (Moshi's token: the token, or `padding_id` for a marker
    or a word of the user's; the user's token or None). Other models pass through."""

    def __init__(self, tokenizer: TextTokenizer | None, padding_id: int = LMConfig.text_padding_id):
        self.active = tokenizer is not None and tokenizer.user_turns
        self.moshi_id = tokenizer.moshi_turn_id if tokenizer is not None else -1
        self.user_id = tokenizer.user_turn_id if tokenizer is not None else -1
        self.padding_id = padding_id
        self.hearing = False  # Moshi speaks first

    def split(self, token: int) -> tuple[int, int | None]:
        if not self.active:
            return token, None
        if token in (self.moshi_id, self.user_id):
            self.hearing = token == self.user_id
            return self.padding_id, None
        return (self.padding_id, token) if self.hearing else (token, None)
