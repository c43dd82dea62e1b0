"""What every subcommand shares: model selection flags (Kyutai's names, and `--model` for
the package's own), device and dtype, and how user errors end the program (one line on
stderr, non-zero exit)."""

from __future__ import annotations

import argparse
import atexit
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from ..codec import Mimi
from ..kernels.topk_head import bfloat16_products_available
from ..lm import LMModel
from ..lm.lora import has_lora
from ..models import ModelFiles
from ..quantize import apply, apply_lm
from ..small import model_folder, shipped_kinds
from ..tiny import write_tiny_models

DIALOGUE_REPO = "kyutai/moshiko-pytorch-bf16"
STT_REPO = "kyutai/stt-1b-en_fr"
TTS_REPO = "kyutai/tts-1.6b-en_fr"
KYUTAI_REPOS = {"dialogue": DIALOGUE_REPO, "stt": STT_REPO, "tts": TTS_REPO}  # by kind of job
JOBS = {"dialogue": "dialogue", "stt": "speech-to-text", "tts": "text-to-speech"}
FAMILIES = ("small", "tiny")  # --model: the package's small models (moshi/small), or random tiny ones
MODEL_FLAGS = ("hf_repo", "moshi_weight", "mimi_weight", "tokenizer", "config", "lora_weight")
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 1 (no traceback)."""


def add_model_args(parser: argparse.ArgumentParser, kind: str, embedded_default: bool = True) -> None:
    """The model flags of a command whose job needs a `kind` of model (dialogue, stt, tts).
    `embedded_default`: with no model flag and no CUDA GPU, the package's small model of
    that kind when it ships one (see `choose_model`)."""
    parser.set_defaults(model_kind=kind, embedded_default=embedded_default)
    g = parser.add_argument_group("model selection (the same flags as Kyutai's tools)")
    default = KYUTAI_REPOS[kind]
    if embedded_default:
        default += "; with no model flag and no CUDA GPU, --model small when it has this kind"
    g.add_argument("--hf-repo", help=f"Hugging Face repo holding the model files (default: {default})")
    g.add_argument(
        "--model",
        choices=FAMILIES,
        help="small: the project's own small models, shipped inside the package (no download); "
        "tiny: random tiny models that babble (to try a command)",
    )
    g.add_argument("--moshi-weight", help="LM weights: local path, file:// URI, hf://owner/repo/file")
    g.add_argument("--mimi-weight", help="Mimi codec weights (same forms)")
    g.add_argument("--tokenizer", help="SentencePiece text tokenizer (same forms)")
    g.add_argument(
        "--config",
        help="Kyutai config.json (file names in it may be hub names, paths relative to it, or file:// URIs)",
    )
    g.add_argument(
        "--lora-weight",
        help="LoRA adapters (a safetensors file from `moshi train lm` or moshi-finetune) to apply "
        "to the LM; a config.json with `lora: true` names its own",
    )
    g.add_argument(
        "--fuse-lora", action="store_true", help="merge the LoRA adapters into the weights (faster steps)"
    )
    g.add_argument(
        "--device", default=None, help="cuda, cuda:N or cpu (default: cuda when available, else cpu)"
    )
    g.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default=None,
        help="LM weights dtype (default: bfloat16 on cuda, float32 on cpu). On cpu, bfloat16 is opt-in and "
        "approximate: the LM's and Mimi's matrix products use bfloat16 weights, the rest stays float32 "
        "(see moshi/quantize.py)",
    )
    g.add_argument(
        "--int8",
        action="store_true",
        help="CPU only, approximate: int8 weights for the LM's and Mimi's matrix products "
        "(~20-25%% faster; see moshi/quantize.py)",
    )


def quantize_if_asked(args: argparse.Namespace, device: torch.device, lm: LMModel, mimi: Mimi) -> None:
    """Apply `--int8`, or on a CPU `--dtype bfloat16` (in place): the LM (loaded in float32
    there, see `dtype_of`) and Mimi get low-precision weights in their matrix products."""
    int8 = getattr(args, "int8", False)
    bf16 = device.type == "cpu" and args.dtype == "bfloat16"
    if not int8 and not bf16:
        return
    flag = "--int8" if int8 else "--dtype bfloat16"
    if int8 and device.type != "cpu":
        raise UserError("--int8 is a CPU option (on a GPU, use --dtype bfloat16)")
    if int8 and bf16:
        raise UserError("--int8 and --dtype bfloat16 are two choices of CPU weights: pick one")
    if has_lora(lm):
        raise UserError(f"{flag} needs the LoRA adapters merged: add --fuse-lora")
    if bf16 and not bfloat16_products_available():
        print(
            "warning: this CPU has no native bfloat16 products (AVX512-BF16 or AMX): --dtype bfloat16 "
            "will be slower than float32 here",
            file=sys.stderr,
        )
    if lm.dtype != torch.float32:
        raise UserError(f"{flag} starts from float32 weights: drop --dtype {args.dtype}")
    dtype = "int8" if int8 else "bfloat16"
    apply_lm(lm, dtype)
    apply(mimi, dtype)


def device_of(args: argparse.Namespace) -> torch.device:
    name = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise UserError(f"unknown device {name!r}: use cpu, cuda or cuda:N") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but no CUDA GPU is available (try --device cpu)")
    if device.type == "cpu" and device.index not in (None, 0):
        raise UserError(f"--device {name}: the CPU has no index (use --device cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(
            f"--device {name}: there are {torch.cuda.device_count()} CUDA GPUs (cuda:0 is the first)"
        )
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"unknown device {name!r}: use cpu, cuda or cuda:N")
    return device


def dtype_of(args: argparse.Namespace, device: torch.device) -> torch.dtype:
    """The dtype to load the LM in. On a CPU, bfloat16 loads float32: `quantize_if_asked`
    then gives the products bfloat16 weights (the rest stays float32)."""
    if args.dtype == "bfloat16" and device.type == "cpu":
        return torch.float32
    if args.dtype is not None:
        return DTYPES[args.dtype]
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def choose_model(args: argparse.Namespace) -> None:
    """Set `args.hf_repo` to the model the flags select for `args.model_kind`: `--model`'s
    folder, `--hf-repo`, else Kyutai's repo, but on a machine without CUDA and with no model
    flag, the package's small model when it has this kind (one line on stderr says so)."""
    kind = args.model_kind
    if args.model is not None:
        if args.hf_repo is not None or args.config is not None:
            raise UserError(f"--model {args.model} and --hf-repo/--config select two models: give one")
        args.hf_repo = str(_family_folder(args.model, kind))
    elif args.hf_repo is None:
        given = any(getattr(args, flag, None) for flag in MODEL_FLAGS)
        args.hf_repo = KYUTAI_REPOS[kind]
        if args.embedded_default and not given and not torch.cuda.is_available() and kind in shipped_kinds():
            args.hf_repo = str(model_folder(kind))
            print(
                f"no model flag and no CUDA GPU: using the package's small {JOBS[kind]} model "
                f"(--model small); Kyutai's: --hf-repo {KYUTAI_REPOS[kind]}",
                file=sys.stderr,
            )


def _family_folder(family: str, kind: str) -> Path:
    if family == "tiny":
        root = Path(tempfile.mkdtemp(prefix="moshi-tiny-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        return write_tiny_models(root)[kind].parent
    if kind not in shipped_kinds():
        shipped = ", ".join(JOBS[k] for k in shipped_kinds()) or "none"
        raise UserError(
            f"--model small: no small {JOBS[kind]} model is shipped yet (shipped: {shipped}); "
            f"Kyutai's: --hf-repo {KYUTAI_REPOS[kind]}"
        )
    return model_folder(kind)


def model_files(args: argparse.Namespace) -> ModelFiles:
    """Resolve (and download when needed) the model files the flags name."""
    choose_model(args)
    try:
        return ModelFiles.resolve(
            hf_repo=args.hf_repo,
            moshi_weight=args.moshi_weight,
            mimi_weight=args.mimi_weight,
            tokenizer=args.tokenizer,
            config=Path(args.config) if args.config and "://" not in args.config else args.config,
            lora_weight=getattr(args, "lora_weight", None),
        )
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from e
