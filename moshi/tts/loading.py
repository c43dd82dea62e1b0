"""A TTS model's pieces from its files: the LM, the text tokenizer, Mimi, the TTS config."""

from __future__ import annotations

from typing import Any

import torch

from ..codec import Mimi
from ..lm import load_lm
from ..models import ModelFiles
from .options import TTSConfig
from .tts import TTS


def load_tts(
    files: ModelFiles,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    n_q: int | None = None,
    cuda_graphs: bool = True,
    **options: Any,
) -> tuple[TTS, Mimi]:
    """The TTS and its codec. `n_q`: generate only the first n_q audio codebooks (faster,
    coarser; the released model has 32). `options`: see `TTSOptions`."""
    config = TTSConfig.parse(files.config)  # before loading anything: is this a TTS model?
    lm = load_lm(files.lm_weights, files.config, device=device, dtype=dtype, n_q=n_q)
    tts = TTS(
        lm,
        files.load_tokenizer(),
        delay_steps=config.delay_steps,
        second_stream_ahead=config.second_stream_ahead,
        voice_suffix=config.voice_suffix,
        cuda_graphs=cuda_graphs,
        **options,
    )
    mimi = files.load_mimi(device=device, num_codebooks=lm.config.dep_q)
    return tts, mimi
