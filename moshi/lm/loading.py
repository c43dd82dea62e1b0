"""Building the LM and loading Kyutai's `model.safetensors` into it."""

from __future__ import annotations

import re
from dataclasses import replace
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
Q8_SCALE_SUFFIX = "_scb"  # Kyutai's q8 files: `<w>_scb` [out] float32 beside each int8 `<w>` [out, in]
Q8_RANGE = 127  # row-wise absmax: w = int8 * scb / 127
FLOAT32_PREFIXES = ("condition_provider.", "fuser.")  # never cast (as the reference does)


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


def dequantize_q8(
    state: dict[str, Tensor], quantize: bool, dtype: torch.dtype = torch.float32
) -> dict[str, Tensor]:
    """Kyutai's q8 checkpoints (`quantize: true`, e.g. kyutai/moshiko-pytorch-q8) store each
    linear weight `<w>` [out, in] as int8 with `<w>_scb` [out] float32, its rows' absmax:
    w = int8 * scb / 127. Returns `dtype` weights in their place (float32 for the conditioners,
    which are never cast); other tensors unchanged.
    `quantize` is what the config says: the file must agree."""
    scales = {k[: -len(Q8_SCALE_SUFFIX)]: v for k, v in state.items() if k.endswith(Q8_SCALE_SUFFIX)}
    if bool(scales) != quantize:
        raise ValueError(
            "the config says quantize: true but the weights have no int8 `*_scb` scales"
            if quantize
            else f"the weights are int8 with scales ({next(iter(scales))}{Q8_SCALE_SUFFIX}): "
            "the config must say quantize: true"
        )
    out = {k: v for k, v in state.items() if not k.endswith(Q8_SCALE_SUFFIX)}
    for name, scb in scales.items():
        w = out.get(name)
        if w is None or w.dtype != torch.int8 or w.dim() != 2 or scb.shape != (w.shape[0],):
            got = "missing" if w is None else f"{w.dtype} {list(w.shape)}"
            raise ValueError(
                f"{name}{Q8_SCALE_SUFFIX} {list(scb.shape)} needs {name} int8 [{scb.shape[0]}, in], got {got}"
            )
        out[name] = (w.float() * (scb.float() / Q8_RANGE)[:, None]).to(
            torch.float32 if name.startswith(FLOAT32_PREFIXES) else dtype
        )
    return out


def keep_codebooks(state: dict[str, Tensor], cfg: LMConfig, n: int) -> tuple[dict[str, Tensor], LMConfig]:
    """The first `n` codebooks of a model that generates all its audio streams (text-to-speech,
    n_q == dep_q): fewer codebooks, faster steps, coarser audio. Returns the state dict and
    config of the smaller model (the other codebooks' embeddings and output linears dropped,
    and the depformer weight sets that none of the first `n` codebooks uses)."""
    if n == cfg.n_q:
        return state, cfg
    if cfg.n_q != cfg.dep_q:
        raise ValueError("only models that generate every audio stream (n_q == dep_q) can drop codebooks")
    if not 1 <= n <= cfg.n_q:
        raise ValueError(f"n_q must be in [1, {cfg.n_q}], got {n}")
    sets = sorted({cfg.depformer_weight_set(k) for k in range(n)})  # the weight sets kept
    schedule = cfg.depformer_weights_per_step_schedule
    small = replace(
        cfg,
        n_q=n,
        dep_q=n,
        delays=cfg.delays[: 1 + n],
        depformer_weights_per_step_schedule=tuple(sets.index(w) for w in schedule[:n]),
    )
    per_codebook = re.compile(r"^(emb|linears|depformer_emb)\.(\d+)\.")
    per_set = re.compile(r"^(depformer_in|depformer\.layers\.\d+\.gating)\.(\d+)\.(.*)$")
    d = cfg.depformer_dim
    out = {}
    for key, value in state.items():
        if m := per_codebook.match(key):
            if int(m.group(2)) >= (n - 1 if m.group(1) == "depformer_emb" else n):
                continue
        elif m := per_set.match(key):
            if int(m.group(2)) not in sets:
                continue
            key = f"{m.group(1)}.{sets.index(int(m.group(2)))}.{m.group(3)}"
        elif key.startswith("depformer.layers.") and key.endswith(".self_attn.in_proj_weight"):
            value = _row_blocks(value, sets, 3 * d)
        elif key.startswith("depformer.layers.") and key.endswith(".self_attn.out_proj.weight"):
            value = _row_blocks(value, sets, d)
        out[key] = value
    return out, small


def _row_blocks(value: Tensor, blocks: list[int], size: int) -> Tensor:
    """The given blocks of `size` rows of a stacked per-set matrix, in order."""
    if blocks == list(range(len(blocks))):
        return value[: len(blocks) * size]  # a view: no copy
    return torch.cat([value[b * size : (b + 1) * size] for b in blocks])


def load_lm(
    weights: str | Path | None = None,
    config: LMConfig | KyutaiConfig | dict[str, Any] | str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    n_q: int | None = None,
) -> LMModel:
    """An LM with Kyutai's weights, in eval mode.

    weights: a local `model.safetensors` (or `file://...`), `hf://owner/repo/file`, a hub
        repo id, or None for `kyutai/moshiko-pytorch-bf16`. For a repo, its `config.json`
        (when `config` is None) gives the architecture and the weights' file name.
    config: Kyutai's config dict / `config.json` path, a `KyutaiConfig` or `LMConfig`, or
        None: the repo's config, else the released Moshi 7B.
    dtype: float32, bfloat16 or float16; the weights are cast to it (conditioners excepted).
        Kyutai's q8 weights (config `quantize: true`) are dequantized to it (`dequantize_q8`);
        the int8 kernels (`--int8`) quantize them again by the same row-absmax rule, which
        gives back the file's int8 values from float32.
    n_q: keep only this many audio codebooks (text-to-speech models; see `keep_codebooks`).
    """
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"dtype must be float32, bfloat16 or float16, got {dtype}")
    repo = DEFAULT_REPO if weights is None else str(weights) if is_repo_id(weights) else None
    if repo is not None:
        kcfg = KyutaiConfig.from_repo(repo)[0] if config is None else _kyutai_config(config)
        path = hf_download(repo, kcfg.moshi_name)
    else:
        kcfg = KyutaiConfig() if config is None else _kyutai_config(config)
        path = locate(weights)  # type: ignore[arg-type]
    cfg = kcfg.lm
    state = merge_split_attention(dequantize_q8(read_state_dict(path, device), kcfg.quantize, dtype))
    if n_q is not None:
        state, cfg = keep_codebooks(state, cfg, n_q)
    state = {
        k: v.to(dtype) if v.is_floating_point() and not k.startswith(FLOAT32_PREFIXES) else v
        for k, v in state.items()
    }
    with torch.device("meta"):
        model = LMModel(cfg)
    load_into(model, state, lambda k: k, None, source=str(path))
    return model.eval()


def _kyutai_config(config: LMConfig | KyutaiConfig | dict[str, Any] | str | Path) -> KyutaiConfig:
    if isinstance(config, KyutaiConfig):
        return config
    if isinstance(config, LMConfig):
        return KyutaiConfig(lm=config)
    return KyutaiConfig.load(config)
