"""A TTS model's pieces from its files: the LM, the text tokenizer, Mimi, the TTS config."""

from __future__ import annotations

from typing import Any

import torch

from ..codec import Mimi
from ..models import ModelFiles
from .options import TTSConfig
from .tts import TTS


def load_tts(
    files: ModelFiles,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    n_q: int | None = None,
    cuda_graphs: bool = True,
    fuse_lora: bool = False,
    **options: Any,
) -> tuple[TTS, Mimi]:
    """The TTS and its codec. `n_q`: generate only the first n_q audio codebooks (faster,
    coarser; the released model has 32). `fuse_lora`: merge the LoRA adapters (if any) into the
    weights. `options`: see `TTSOptions`."""
    config = TTSConfig.parse(files.config)  # before loading anything: is this a TTS model?
    lm = files.load_lm(device, dtype, n_q, fuse_lora)
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
