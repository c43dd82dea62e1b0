"""Building Mimi and loading Kyutai's released weights into it; saving in the same layout."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_into, read_state_dict
from ..hub import DEFAULT_REPO, resolve_file
from .config import MimiConfig
from .model import Mimi

MIMI_NAME = "tokenizer-e351c8d8-checkpoint125.safetensors"
# The two files of a codec we save (`save_mimi`: training checkpoints, the small family).
MIMI_WEIGHTS, MIMI_CONFIG = "mimi.safetensors", "mimi_config.json"

# Kyutai's modules nest wrappers (StreamingConv1d > NormConv1d > Conv1d, a ProjectedTransformer
# around the transformer, a VQ layer around each codebook); ours do not.
_RENAMES = [
    (re.compile(r"(?:conv\.){2,}"), "conv."),
    (re.compile(r"(?:convtr\.){2,}"), "convtr."),
    (re.compile(r"_transformer\.transformer\.layers\."), "_transformer.layers."),
    (re.compile(r"\.vq\.layers\.(\d+)\._codebook\."), r".codebooks.\1."),
    # The reference's newer code writes attention weights split per step.
    (re.compile(r"\.in_projs\.0\.weight$"), ".in_proj_weight"),
    (re.compile(r"\.out_projs\.0\.weight$"), ".out_proj.weight"),
]


# The way back, to the key names of Kyutai's released file (the older, unsplit attention).
_RENAMES_BACK = [
    (re.compile(r"^downsample\.conv\."), "downsample.conv.conv.conv."),
    (re.compile(r"^upsample\.convtr\."), "upsample.convtr.convtr.convtr."),
    (re.compile(r"(?<!conv)\.conv\.(weight|bias)$"), r".conv.conv.\1"),
    (re.compile(r"^(?!upsample)(.*)\.convtr\.(weight|bias)$"), r"\1.convtr.convtr.\2"),
    (re.compile(r"_transformer\.layers\."), "_transformer.transformer.layers."),
    (re.compile(r"\.codebooks\.(\d+)\."), r".vq.layers.\1._codebook."),
]


def checkpoint_to_ours(key: str) -> str:
    """Map a key of Kyutai's Mimi checkpoint to this implementation's parameter name."""
    for pattern, repl in _RENAMES:
        key = pattern.sub(repl, key)
    return key


def ours_to_checkpoint(key: str) -> str:
    """Map this implementation's parameter name to the key of Kyutai's released Mimi file."""
    for pattern, repl in _RENAMES_BACK:
        key = pattern.sub(repl, key)
    return key


def mimi_config(config: MimiConfig | dict[str, Any] | str | Path | None) -> MimiConfig:
    if config is None:
        return MimiConfig()
    if isinstance(config, MimiConfig):
        return config
    return MimiConfig.from_kyutai(config)


def load_mimi(
    weights: str | Path | None = None,
    config: MimiConfig | dict[str, Any] | str | Path | None = None,
    num_codebooks: int = 8,
    device: str | torch.device = "cpu",
) -> Mimi:
    """Mimi with Kyutai's weights, in float32, in eval mode.

    weights: a local `.safetensors` path (or `file://...`), `hf://owner/repo/file`, a hub
        repo id (its `tokenizer-e351c8d8-checkpoint125.safetensors`), or None for the
        released model from `kyutai/moshiko-pytorch-bf16`.
    config: Kyutai's Mimi config format (a dict or a json path), or None for the released
        architecture.
    num_codebooks: codebooks `encode` produces: 8 for Moshi, 32 for speech-to-text.
    """
    cfg = mimi_config(config)
    path = resolve_file(weights, DEFAULT_REPO, MIMI_NAME)
    state = read_state_dict(path, device)
    with torch.device("meta"):
        model = Mimi(cfg, num_codebooks=num_codebooks)
    load_into(model, state, checkpoint_to_ours, torch.float32, source=str(path))
    return model.eval()


def save_mimi(mimi: Mimi, weights: str | Path, config: str | Path) -> None:
    """Write `mimi` as Kyutai's release does: a safetensors file with Kyutai's key names
    (float32) and the config json in Kyutai's format; `load_mimi(weights, config)` reads them."""
    from safetensors.torch import save_file

    state = {
        ours_to_checkpoint(k): v.detach().float().contiguous().cpu() for k, v in mimi.state_dict().items()
    }
    save_file(state, str(weights))
    Path(config).write_text(json.dumps(mimi.config.to_kyutai(), indent=1) + "\n")
