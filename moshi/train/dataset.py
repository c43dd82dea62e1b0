"""Training items for the LM: crops of `duration_sec` of cached Mimi codes, with the text
stream built from the word alignments, laid out as `LMModel.forward(codes)` takes them.

    item [K, T] int64, K = 1 + n_q, T = ceil(duration_sec * 12.5):
      dialogue  row 0 Moshi's words (SPEAKER_MAIN), rows 1..dep_q the left channel (Moshi),
                rows dep_q+1..n_q the right channel (the user)  (stereo files); with
                `dialogue_config.user_text_delay_seconds`, row 0 has the user's words too,
                that plus one frame behind their audio, between EOS and BOS
      stt       row 0 the words, `stt_config.audio_delay_seconds` plus one frame behind the
                audio (STT_STEP_LAG_S); rows 1..n_q the audio  (mono files)
      tts       row 0 the words, `tts_config.audio_delay` ahead of the audio; rows 1..n_q the
                audio  (mono files)
    -1 (the zero token: embeds to zero, no loss) where a row is undefined: past the end of
    the file, and every audio row of a text-only item (a dialogue manifest's line naming an
    alignments file alone: the model learns its text stream from the words, with no audio).
    Speech-to-text's text before the file's start is padding (nothing was said), as the
    model's own padding is what it reads there when it transcribes; and its files go on
    in silence for STT_SILENCE_AFTER_S (encoded after the file, text padding once the last
    words' delayed text is out), as they do when it transcribes.
    One channel of a dialogue (a manifest line with `"channel"`) is a mono item for speech-to-
    text or text-to-speech, with its speaker's words: its codes are the stereo file's own
    (the dialogue task's cache entry, shared), so it has no silence encoded after it (a
    dialogue's channel goes on past its speaker's last words while the other answers).

Every file is checked and encoded (or found in the codes cache) when the dataset is made; a
bad one (missing or malformed alignments, a word outside the audio, an unreadable file, the
wrong number of channels) is logged with one line naming it, skipped and counted in
`skipped`. Other sample rates are resampled. A file of F frames gives max(1, F // T) items
(long files are seen as often as their length warrants); item i's crop starts at a random
frame drawn from a generator seeded by (seed, epoch, i), so runs are reproducible and
resumable: `set_epoch` moves to the next epoch's crops.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from ..audio import FRAME_RATE, AudioFileError
from ..codec import Mimi
from ..lm.config import KyutaiConfig, LMConfig
from ..lm.layers import ZERO_TOKEN
from ..lm.text import TextTokenizer
from ..tts.options import TTSConfig
from .alignments import (
    CHANNELS,
    MAIN_SPEAKER,
    AlignedWord,
    DataError,
    Entry,
    channel_words,
    check_within,
    read_alignments,
    read_manifest,
)
from .codes_cache import CodesCache, codes_shape, load_codes
from .text_stream import text_stream

Task = Literal["dialogue", "stt", "tts"]
TASKS: tuple[Task, ...] = ("dialogue", "stt", "tts")
WORD_SLACK_S = 1 / FRAME_RATE  # alignments may end up to one frame after the audio

log = logging.getLogger(__name__)

# A streaming step that has heard frame t writes the text of training position t + 1 (where
# LMModel.forward has seen frame t), and the transcriber dates step t's token at frame t less
# the delay (Kyutai's scripts do the same): so speech-to-text's training text runs one frame
# later than `audio_delay_seconds` says, and word times come out where the words start.
STT_STEP_LAG_S = 1 / FRAME_RATE
# Speech-to-text also learns the silence after a file, with the last words' text in it: the
# transcriber feeds silence after its input for the text delay to run out, and a model that
# never heard what follows speech writes words there.
STT_SILENCE_AFTER_S = 1.0


@dataclass(frozen=True)
class Layout:
    """How a task maps audio channels and words onto the model's streams."""

    channels: int  # audio channels a file must have (dialogue: 2, left = Moshi)
    codebooks: int  # Mimi codebooks per channel
    delay_s: float  # seconds the audio lags the text (< 0: the text lags the audio)
    main_only: bool  # only the main speaker's words make the text
    padding_before_start: bool = False  # text before the file's start: padding, not unknown (-1)
    silence_after_s: float = 0.0  # the file goes on in silence this long (text: padding)
    user_delay_s: float | None = None  # dialogue: the user's words in the text this late too

    def codes_cache(self, folder: str | Path, mimi: Mimi, channel_items: bool = False) -> CodesCache:
        """Where this layout's codes of a file are kept (its codebooks, its silence after);
        `channel_items`: of the stereo files whose channels are items (no silence after)."""
        tail = 0 if channel_items else math.ceil(self.silence_after_s * FRAME_RATE)
        return CodesCache(folder, mimi, self.codebooks, tail_frames=tail)


def task_layout(task: str, config: KyutaiConfig | LMConfig, delay_s: float | None = None) -> Layout:
    """The layout of `task` for a model. `delay_s` overrides the text's delay read from the
    config (-`stt_config.audio_delay_seconds` - STT_STEP_LAG_S, `tts_config.audio_delay`);
    with an LMConfig alone, speech-to-text and text-to-speech need it."""
    lm = config.lm if isinstance(config, KyutaiConfig) else config
    full = config if isinstance(config, KyutaiConfig) else None
    if task == "dialogue":
        if lm.dep_q == 0 or lm.n_q != 2 * lm.dep_q:
            got = f"n_q={lm.n_q}, dep_q={lm.dep_q}"
            raise ValueError(f"dialogue needs a model with n_q = 2 * dep_q > 0, got {got}")
        delay_s = 0.0 if delay_s is None else delay_s
        heard = full.user_text_delay_seconds if full is not None else None
        if heard is None:
            return Layout(2, lm.dep_q, delay_s, main_only=True)
        return Layout(2, lm.dep_q, delay_s, main_only=False, user_delay_s=-heard - STT_STEP_LAG_S)
    if task == "stt":
        if lm.dep_q != 0:
            raise ValueError(f"stt needs a model that generates no audio (dep_q = 0), got dep_q={lm.dep_q}")
        if delay_s is None:
            if full is None or "audio_delay_seconds" not in full.stt_config:
                raise ValueError("stt needs the text delay: config.stt_config.audio_delay_seconds or delay_s")
            delay_s = -float(full.stt_config["audio_delay_seconds"]) - STT_STEP_LAG_S
        after = STT_SILENCE_AFTER_S
        return Layout(1, lm.n_q, delay_s, main_only=False, padding_before_start=True, silence_after_s=after)
    if task == "tts":
        if lm.dep_q != lm.n_q:
            got = f"dep_q={lm.dep_q}, n_q={lm.n_q}"
            raise ValueError(f"tts needs a model that generates all its audio (dep_q = n_q), got {got}")
        if delay_s is None:
            if full is None:
                raise ValueError("tts needs the audio delay: config.tts_config.audio_delay or delay_s")
            delay_s = TTSConfig.parse(full).audio_delay
        return Layout(1, lm.n_q, delay_s, main_only=False)
    raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")


@dataclass(frozen=True)
class _File:
    path: Path
    codes: Path | None  # the codes cache file: [C, K, F] codes (None: a text-only item)
    frames: int  # F
    words: tuple[AlignedWord, ...]
    channel: int | None = None  # the one channel of a stereo file this item is


class LMDataset:
    """`dataset[i]` -> [K, T] int64 (see the module docstring); `collate` stacks to [B, K, T].
    `manifest`: a `.jsonl` path or entries; `tokenizer`: a TextTokenizer or its path;
    `random_crop=False` cuts each file into consecutive crops instead (for evaluation)."""

    def __init__(
        self,
        manifest: str | Path | Sequence[Entry],
        mimi: Mimi,
        tokenizer: TextTokenizer | str | Path,
        config: KyutaiConfig | LMConfig,
        *,
        task: Task = "dialogue",
        duration_sec: float,
        cache_dir: str | Path,
        delay_s: float | None = None,
        main_speaker: str = MAIN_SPEAKER,
        random_crop: bool = True,
        seed: int = 0,
    ):
        if not duration_sec > 0:
            raise ValueError(f"duration_sec must be > 0, got {duration_sec}")
        self.lm = config.lm if isinstance(config, KyutaiConfig) else config
        self.layout = task_layout(task, config, delay_s)
        self.task = task
        self.tokenizer = tokenizer if isinstance(tokenizer, TextTokenizer) else TextTokenizer(tokenizer)
        if self.tokenizer.vocab_size > self.lm.text_card or mimi.cardinality > self.lm.card:
            raise ValueError(
                f"the model reads {self.lm.text_card} text tokens and {self.lm.card} audio codes, got a "
                f"tokenizer of {self.tokenizer.vocab_size} and a Mimi of {mimi.cardinality}"
            )
        self.num_frames = math.ceil(duration_sec * FRAME_RATE)
        self.main_speaker, self.random_crop, self.seed = main_speaker, random_crop, seed
        self.epoch = 0
        self.cache = self.layout.codes_cache(cache_dir, mimi)
        self.stereo_cache = self.layout.codes_cache(cache_dir, mimi, channel_items=True)
        self.skipped: Counter[str] = Counter()
        entries = read_manifest(manifest) if isinstance(manifest, (str, Path)) else list(manifest)
        self.files: list[_File] = []
        for entry in entries:
            try:
                self.files.append(self._prepare(entry))
            except DataError as e:
                self._skip(e.reason, str(e))
            except AudioFileError as e:
                self._skip("unreadable audio", str(e))
        counts = [max(1, f.frames // self.num_frames) for f in self.files]
        self._ends = list(itertools.accumulate(counts))  # items up to file i, included

    def _skip(self, reason: str, message: str) -> None:
        self.skipped[reason] += 1
        log.warning("skipped %s", message)

    def _prepare(self, entry: Entry) -> _File:
        words = read_alignments(entry.alignments_path)
        if entry.text_only:
            if self.task != "dialogue" or not entry.duration > 0:
                message = f"{entry.path}: a text-only item needs the dialogue task and a duration > 0"
                raise DataError(f"{message}, got {self.task} and {entry.duration:g} s", "text-only item")
            check_within(words, entry.duration, str(entry.path), WORD_SLACK_S)
            return _File(entry.path, None, math.ceil(entry.duration * FRAME_RATE), tuple(words))
        if entry.channel is not None and self.layout.channels != 1:
            message = f"{entry.path}: channel {entry.channel} of a file is a mono item, for stt or tts"
            raise DataError(f"{message}, got the {self.task} task", "channel item")
        # One channel of a dialogue reads the stereo file's codes (no silence encoded after).
        cache, want = (
            (self.cache, self.layout.channels)
            if entry.channel is None
            else (self.stereo_cache, len(CHANNELS))
        )
        stored = cache.store(entry.path)
        channels, _, frames = codes_shape(stored)
        if channels != want:
            kind = "stereo" if want == 2 else "mono"
            user = self.task if entry.channel is None else f"channel {entry.channel}"
            raise DataError(
                f"{entry.path}: {user} needs {kind} audio, got {channels} channel(s)", f"not {kind}"
            )
        check_within(words, frames / FRAME_RATE, str(entry.alignments_path), WORD_SLACK_S)
        if entry.channel is not None:
            words = channel_words(words, entry.channel, self.main_speaker)
        return _File(entry.path, stored, frames, tuple(words), entry.channel)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int) -> Tensor:
        """Item i of the current epoch: its crop start drawn from a generator seeded by
        (seed, epoch, i)."""
        key = hashlib.sha256(f"{self.seed}:{self.epoch}:{i}".encode()).digest()
        return self.item(i, torch.Generator().manual_seed(int.from_bytes(key[:8], "little") >> 1))

    def item(self, i: int, generator: torch.Generator | None = None) -> Tensor:
        """Item i [K, T], its random crop start drawn from `generator`."""
        if not 0 <= i < len(self):
            raise IndexError(f"item {i} of a dataset of {len(self)}")
        f = bisect.bisect_right(self._ends, i)
        room = max(0, self.files[f].frames - self.num_frames)
        if self.random_crop:
            start = int(torch.randint(room + 1, (1,), generator=generator))
        else:
            start = min(room, (i - (self._ends[f - 1] if f else 0)) * self.num_frames)
        return self.crop(f, start)

    def crop(self, f: int, start: int) -> Tensor:
        """The item of file f whose crop starts at frame `start`: [K, T] int64."""
        file, T, lay = self.files[f], self.num_frames, self.layout
        out = torch.full((1 + lay.channels * lay.codebooks, T), ZERO_TOKEN, dtype=torch.int64)
        if file.codes is None:  # text only: the audio rows stay the zero token
            present = max(0, min(T, file.frames - start))
        else:
            codes = load_codes(file.codes, start, start + T)  # [C, K', T'] with T' <= T
            if file.channel is not None:
                codes = codes[file.channel : file.channel + 1]
            present = codes.shape[-1]
            out[1:, :present] = codes.reshape(-1, present)
        text = text_stream(
            file.words,
            self.tokenizer,
            present,
            delay_s=lay.delay_s,
            offset_s=start / FRAME_RATE,
            main_only=lay.main_only,
            padding_before_start=lay.padding_before_start,
            main_speaker=self.main_speaker,
            user_delay_s=lay.user_delay_s,
            keep_and_shift=lay.user_delay_s is not None,  # two speakers' words may overlap
            padding_id=self.lm.text_padding_id,
            end_of_padding_id=self.lm.text_end_padding_id,
        )
        out[0, :present] = text
        assert out.shape[0] == self.lm.num_streams, f"rows {out.shape[0]} != 1 + n_q = {self.lm.num_streams}"
        return out


def collate(items: Sequence[Tensor]) -> Tensor:
    """Items [K, T] -> a batch [B, K, T]."""
    return torch.stack(list(items))
