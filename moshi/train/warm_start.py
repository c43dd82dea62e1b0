"""Start a fresh multistream LM from a trained one's weights (`model.init_from`).

The use that matters: a dialogue model starting from a speech-to-text model. The
speech-to-text model already turns a voice into words; a dialogue model must do the same
with the user's stream before it can answer. So the source's transformer, output norm,
text embedding and text head are copied by name, and the source's *heard* audio streams
(its `n_q - dep_q` input-only streams: all of a speech-to-text model's) become the target's
heard streams (the user's, `emb[dep_q:]`). When the source generates no audio (a
speech-to-text model), the target's generated streams (Moshi's own voice, `emb[:dep_q]`)
start at zero, so at step 0 the model reads the user exactly as the source did; otherwise
they keep their fresh values. The depformer always keeps its fresh weights. The source is
read by the LM loader (`moshi.lm.load_lm`), so any checkpoint it reads will do.

A target with more transformer layers than the source grows in depth: the source's layers
are its first ones, and each extra layer starts as the identity, the last linear of each of
its residual branches (attention's output projection, the feed-forward's `linear_out`) at
zero. So a deeper model starts out computing exactly what the source computed, and learns
from there (the zeroed linears get gradients at once, the rest from the next step).

Every copied tensor must have the target's shape: a mismatch is a ValueError naming the
tensor and both shapes (the configs' `dim`, `num_heads`, `hidden_scale` and `text_card`
must agree; the target may have more layers, not fewer).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..lm.config import KyutaiConfig
from ..lm.loading import load_lm
from ..lm.model import LMModel

log = logging.getLogger(__name__)

# Taken by name when the source has them; everything else keeps its fresh value.
SHARED_PREFIXES = ("transformer.", "out_norm.", "text_emb.", "text_linear.")
# The last linear of each residual branch of a transformer layer: zero, the layer is the identity.
BRANCH_OUTPUTS = ("self_attn.out_proj.weight", "cross_attention.out_proj.weight", "gating.linear_out.weight")


Tensors = dict[str, torch.Tensor]


def source_tensors(source: KyutaiConfig, state: Tensors, target: LMModel) -> Tensors:
    """The target's tensors to overwrite, by target name, from a source model's `state`."""
    src, dst = source.lm, target.config
    heard_src, heard_dst = src.n_q - src.dep_q, dst.n_q - dst.dep_q
    if heard_src != heard_dst:
        raise ValueError(f"model.init_from hears {heard_src} audio streams, the model hears {heard_dst}")
    taken = {name: t for name, t in state.items() if name.startswith(SHARED_PREFIXES)}
    for k in range(heard_dst):
        taken[f"emb.{dst.dep_q + k}.weight"] = state[f"emb.{src.dep_q + k}.weight"]
    if src.dep_q == 0:  # the source never spoke: the target's own voice starts silent
        for k in range(dst.dep_q):
            taken[f"emb.{k}.weight"] = torch.zeros(dst.card + 1, dst.dim)
    for name, p in target.named_parameters():  # the layers the source lacks start as the identity
        layer = name.split(".")[2] if name.startswith("transformer.layers.") else None
        if layer is not None and int(layer) >= src.num_layers and name.endswith(BRANCH_OUTPUTS):
            taken[name] = torch.zeros_like(p)
    return taken


def warm_start(model: LMModel, source_dir: str | Path) -> list[str]:
    """Overwrite `model`'s tensors from the model in `source_dir` (config.json and the
    weights it names, as a checkpoint's `consolidated/` holds them). Returns the names set."""
    source_dir = Path(source_dir)
    config_path = source_dir / "config.json"
    if not config_path.is_file():
        raise ValueError(f"model.init_from: {source_dir} has no {config_path.name}")
    source = KyutaiConfig.load(config_path)
    weights = source_dir / source.moshi_name
    if not weights.is_file():
        raise ValueError(f"model.init_from: {source_dir} has no {source.moshi_name}")
    state = load_lm(weights, source, dtype=torch.float32).state_dict()
    taken = source_tensors(source, state, model)
    params = dict(model.named_parameters())
    for name, tensor in taken.items():
        if name not in params:
            raise ValueError(f"model.init_from: {name} has no place in the model")
        want = params[name]
        if tensor.shape != want.shape:
            got, expected = tuple(tensor.shape), tuple(want.shape)
            raise ValueError(f"model.init_from: {name} has shape {got}, the model expects {expected}")
        with torch.no_grad():
            want.copy_(tensor.to(want.dtype))
    log.info("warm start from %s: %d of %d tensors", source_dir, len(taken), len(params))
    return sorted(taken)
