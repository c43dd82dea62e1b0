"""Building the LM and loading Kyutai's `model.safetensors` into it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..checkpoint import load_into, read_state_dict
from ..hub import DEFAULT_REPO, hf_download, is_repo_id, locate
from .config import KyutaiConfig, LMConfig
from .model import LMModel

MOSHI_NAME = "model.safetensors"
_SPLIT = re.compile(r"^(.*)\.(in_projs|out_projs)\.(\d+)\.weight$")


def merge_split_attention(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The reference's newer code writes attention per step (`in_projs.{i}.weight`,
    `out_projs.{i}.weight`); the released files stack them (`in_proj_weight`,
    `out_proj.weight`). Bring the former to the latter."""
    groups: dict[str, dict[int, Tensor]] = {}
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        m = _SPLIT.match(key)
        if m is None:
            out[key] = value
            continue
        prefix, kind, idx = m.groups()
        name = f"{prefix}.in_proj_weight" if kind == "in_projs" else f"{prefix}.out_proj.weight"
        groups.setdefault(name, {})[int(idx)] = value
    for name, parts in groups.items():
        if sorted(parts) != list(range(len(parts))):
            raise ValueError(
                f"{name}: split weights have indices {sorted(parts)}, expected 0..{len(parts) - 1}"
            )
        if name in out:
            raise ValueError(f"{name} is present both stacked and split")
        out[name] = torch.cat([parts[i] for i in range(len(parts))], dim=0)
    return out


def load_lm(
    weights: str | Path | None = None,
    config: LMConfig | KyutaiConfig | dict[str, Any] | str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> LMModel:
    """An LM with Kyutai's weights, in eval mode.

    weights: a local `model.safetensors` (or `file://...`), `hf://owner/repo/file`, a hub
        repo id, or None for `kyutai/moshiko-pytorch-bf16`. For a repo, its `config.json`
        (when `config` is None) gives the architecture and the weights' file name.
    config: Kyutai's config dict / `config.json` path, a `KyutaiConfig` or `LMConfig`, or
        None: the repo's config, else the released Moshi 7B.
    dtype: float32, bfloat16 or float16; the weights are cast to it.
    """
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"dtype must be float32, bfloat16 or float16, got {dtype}")
    repo = DEFAULT_REPO if weights is None else str(weights) if is_repo_id(weights) else None
    if repo is not None:
        kcfg = KyutaiConfig.from_repo(repo)[0] if config is None else _kyutai_config(config)
        path = hf_download(repo, kcfg.moshi_name)
        cfg = kcfg.lm
    else:
        cfg = _lm_config(config)
        path = locate(weights)  # type: ignore[arg-type]
    state = merge_split_attention(read_state_dict(path, device))
    with torch.device("meta"):
        model = LMModel(cfg)
    load_into(model, state, lambda k: k, dtype, source=str(path))
    return model.eval()


def _kyutai_config(config: LMConfig | KyutaiConfig | dict[str, Any] | str | Path) -> KyutaiConfig:
    if isinstance(config, KyutaiConfig):
        return config
    if isinstance(config, LMConfig):
        return KyutaiConfig(lm=config)
    return KyutaiConfig.load(config)


def _lm_config(config: LMConfig | KyutaiConfig | dict[str, Any] | str | Path | None) -> LMConfig:
    return KyutaiConfig().lm if config is None else _kyutai_config(config).lm
