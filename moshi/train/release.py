"""What an LM checkpoint's `consolidated/` folder holds: files every command loads.

- full fine-tune (or LoRA with `save_adapters: false`): `model.safetensors` (adapters
  merged) in `param_dtype`, and `config.json` naming it;
- LoRA: `lora.safetensors` (the adapters alone, Kyutai's names) and a `config.json` with
  `lora: true`, `lora_rank`, `lora_scaling` and `lora_name`, whose `moshi_name` is the base
  weights the adapters go on.

`config.json` is the base model's Kyutai config (or, for the released 7B, which has none,
its values written out), with `mimi_name`, `mimi_config_name`, `tokenizer_name` and, for
adapters, `moshi_name` as absolute paths. So `moshi serve --config RUN/.../consolidated/config.json`
runs the fine-tuned model, and so does `--moshi-weight .../model.safetensors` or
`--lora-weight .../lora.safetensors` with the base model's flags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..lm.config import KyutaiConfig, LMConfig
from ..lm.lora import LoRAOptions, merged_state_dict, save_lora
from ..lm.model import LMModel

MODEL_FILE = "model.safetensors"
LORA_FILE = "lora.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class Release:
    config: KyutaiConfig  # the base model's
    base_weights: Path | None  # None: trained from scratch
    mimi: Path
    tokenizer: Path
    dtype: torch.dtype
    mimi_config: Path | None = None
    lora: LoRAOptions | None = None  # adapters were trained
    save_adapters: bool = True

    def write(self, folder: Path, model: LMModel, state: dict[str, Tensor]) -> None:
        """`model`: the (unwrapped) trained model, for its structure; `state`: its full
        state dict (gathered from the shards with FSDP)."""
        data = kyutai_config_dict(self.config)
        data.update(mimi_name=str(self.mimi.resolve()), tokenizer_name=str(self.tokenizer.resolve()))
        if self.mimi_config is not None:
            data["mimi_config_name"] = str(self.mimi_config.resolve())
        for key in ("lora", "lora_rank", "lora_scaling", "lora_name"):
            data.pop(key, None)
        if self.lora is not None and self.save_adapters and self.base_weights is not None:
            save_lora(model, folder / LORA_FILE, self.lora, state)
            data.update(
                moshi_name=str(self.base_weights.resolve()),
                lora=True,
                lora_rank=self.lora.rank,
                lora_scaling=self.lora.scaling,
                lora_name=LORA_FILE,
            )
        else:
            from safetensors.torch import save_file

            weights = merged_state_dict(model, state) if self.lora is not None else state
            save_file({k: _cast(k, v, self.dtype) for k, v in weights.items()}, str(folder / MODEL_FILE))
            data["moshi_name"] = MODEL_FILE
        (folder / CONFIG_FILE).write_text(json.dumps(data, indent=1) + "\n")


def _cast(key: str, v: Tensor, dtype: torch.dtype) -> Tensor:
    keep = not v.is_floating_point() or key.startswith(("condition_provider.", "fuser."))
    return (v if keep else v.to(dtype)).detach().contiguous().cpu()


def kyutai_config_dict(config: KyutaiConfig) -> dict[str, Any]:
    """The base's config.json as read, or (none was: the released 7B) its values in
    Kyutai's keys."""
    if config.raw:
        return dict(config.raw)
    lm: LMConfig = config.lm
    if lm.conditioners or lm.depformer_weights_per_step_schedule or lm.depformer_low_rank_embeddings:
        raise ValueError("a config with conditioners or shared depformer weights needs its config.json")
    keys = (
        "dim num_heads num_layers hidden_scale context max_period text_card card n_q dep_q "
        "depformer_dim depformer_dim_feedforward depformer_num_heads depformer_num_layers"
    )
    data: dict[str, Any] = {k: getattr(lm, k) for k in keys.split()}
    data.update(
        delays=list(lm.delays),
        existing_text_padding_id=lm.text_padding_id,
        existing_text_end_padding_id=lm.text_end_padding_id,
        causal=True,
        gating="silu",
        norm="rms_norm_f32",
        positional_embedding="rope",
        depformer_multi_linear=True,
        depformer_weights_per_step=True,
        depformer_pos_emb="none",
        model_type=config.model_type,
    )
    if lm.extra_heads_num_heads:
        data.update(extra_heads_num_heads=lm.extra_heads_num_heads, extra_heads_dim=lm.extra_heads_dim)
    return data
