"""Text tokens: SentencePiece, and the pieces shown to people as Moshi speaks."""

from __future__ import annotations

from pathlib import Path

from .config import LMConfig

SPACE_MARK = "\u2581"  # SentencePiece's "▁": a word starts here


class TextTokenizer:
    """A SentencePiece model, with `piece(token)` giving what to display for one token:
    the piece with "▁" shown as a space, or None for padding tokens (PAD, end-of-padding)
    and control pieces."""

    def __init__(
        self,
        path: str | Path,
        hidden_ids: tuple[int, ...] = (LMConfig.text_end_padding_id, LMConfig.text_padding_id),
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
