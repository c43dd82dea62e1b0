"""Loading a model for one job, after checking that it fits the job.

Which job a model can do is read from its shape, not from its `model_type` string: a
dialogue model (Moshi) generates as many audio streams as it hears from the user; a
speech-to-text model generates none (dep_q = 0) and reads every codebook of the user.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

import torch

from ..codec import Mimi
from ..lm import LMModel
from ..lm.config import LMConfig
from ..lm.text import TextTokenizer
from ..models import ModelFiles
from ..stt import SttTiming, has_vad
from ..stt.ear import Ear
from .common import STT_REPO, UserError, device_of, dtype_of, model_files, quantize_if_asked

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    files: ModelFiles
    mimi: Mimi
    lm: LMModel
    tokenizer: TextTokenizer
    device: torch.device
    ear: Ear | None = None  # the speech-to-text model hearing for a dialogue model (moshi/stt/ear.py)


def model_name(args: argparse.Namespace) -> str:
    return args.moshi_weight or args.config or args.hf_repo or "the model"


def is_dialogue(lm: LMConfig) -> bool:
    return lm.dep_q > 0 and lm.num_user_streams == lm.dep_q


def is_speech_to_text(lm: LMConfig) -> bool:
    return lm.dep_q == 0


def resolve_dialogue(args: argparse.Namespace) -> ModelFiles:
    """The model files the flags name, refusing models that cannot hold a dialogue."""
    device_of(args)  # a bad --device is reported before any download
    files = model_files(args)
    lm = files.config.lm
    if not is_dialogue(lm):
        what = (
            "a speech-to-text model (it listens but does not speak): use `moshi transcribe`"
            if is_speech_to_text(lm)
            else f"not a dialogue model (it hears {lm.num_user_streams} audio streams and makes {lm.dep_q})"
        )
        raise UserError(f"{model_name(args)} is {what}")
    return files


def resolve_speech_to_text(args: argparse.Namespace) -> ModelFiles:
    """The model files the flags name, refusing models that are not speech-to-text."""
    device_of(args)
    files = model_files(args)
    if not is_speech_to_text(files.config.lm):
        raise UserError(
            f"{model_name(args)} is not a speech-to-text model (it speaks: use `moshi infer` or "
            f"`moshi chat`); speech-to-text models are e.g. {STT_REPO}"
        )
    return files


def load(args: argparse.Namespace, files: ModelFiles) -> Loaded:
    """Weights, codec and tokenizer, on the device and dtype the flags ask for."""
    device = device_of(args)
    try:
        lm = files.load_lm(device=device, dtype=dtype_of(args, device), fuse_lora=args.fuse_lora)
        mimi = files.load_mimi(device=device)
        tokenizer = files.load_tokenizer()
        ear = load_ear(files, lm, tokenizer, device, dtype_of(args, device))
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from e
    quantize_if_asked(args, device, lm, mimi)
    return Loaded(files, mimi, lm, tokenizer, device, ear)


def load_ear(
    files: ModelFiles, lm: LMModel, tokenizer: TextTokenizer, device: torch.device, dtype: torch.dtype
) -> Ear | None:
    """The speech-to-text model a dialogue model's config names to hear for it, if any."""
    if files.ear is None or not is_dialogue(lm.config):
        return None
    folder = files.ear.lm_weights.resolve().parent
    log.info("the speech-to-text model in %s writes down the user's words (dialogue_config.ear)", folder)
    return Ear(files.ear.load_lm(device=device, dtype=dtype), lm.config, tokenizer)


def load_stt(args: argparse.Namespace) -> tuple[Loaded, SttTiming]:
    """A speech-to-text model and its timing, refusing --vad for a model without the head."""
    files = resolve_speech_to_text(args)
    try:
        timing = SttTiming.from_config(files.config.stt_config)
    except ValueError as e:
        raise UserError(str(e)) from e
    model = load(args, files)
    if args.vad and not has_vad(model.lm):
        raise UserError("--vad: this model has no voice-activity head (kyutai/stt-1b-en_fr has one)")
    return model, timing
