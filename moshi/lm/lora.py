"""LoRA: low-rank adapters on an LM's linear layers, as a transform of a built model.

    apply_lora(model, LoRAOptions(rank=128, scaling=2.0))   # adapters added, the rest frozen
    save_lora(model, "lora.safetensors")                    # the adapters alone
    load_lora(model, "lora.safetensors")                    # apply_lora + their weights
    merge_lora(model)                                       # W += scaling * B @ A, adapters gone

Each adapted product computes x @ W.T + scaling * (x @ A.T) @ B.T, with A [rank, in]
(Kaiming-uniform) and B [out, rank] (zeros: a fresh adapter changes nothing). Adapted:
every `nn.Linear` of the model (as Kyutai's `replace_all_linear_with_lora`), and the
stacked attention projections, by swapping the attention modules' `HostRows` children
(`Attention.in_proj`, `PerStepAttention.in_projs/out_projs`: one adapter per depformer
weight set); the cross-attention's stacked `in_proj_weight` is not adapted.
`LoRAOptions.targets` narrows this to module names matching glob patterns.

The base weights keep their names, so base checkpoints load into an adapted model and a
merged model is a plain one. Adapter files use the names of Kyutai's LoRA files
(moshi-finetune's `lora.safetensors`: `...self_attn.in_projs.0.lora_A.weight`), so theirs
load here and ours there; with `ft_embed` they also hold the embedding tables, in full.
The rank and scaling are written in the file's metadata.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.attention import Attention
from ..nn.linear import HostRows
from .depformer import PerStepAttention
from .layers import Embedding
from .model import LMModel

_OURS_TO_KYUTAI = re.compile(r"\.self_attn\.(in_proj|out_proj)\.lora_")
_KYUTAI_TO_OURS = re.compile(r"^(transformer\.layers\.\d+\.self_attn)\.(in_proj|out_proj)s\.0\.lora_")


@dataclass(frozen=True)
class LoRAOptions:
    rank: int = 64
    scaling: float = 2.0
    ft_embed: bool = False  # also train (and save) the embedding tables
    targets: tuple[str, ...] = ("*",)  # glob patterns on module names, e.g. "transformer.*"

    def __post_init__(self) -> None:
        if self.rank < 1 or self.scaling <= 0:
            raise ValueError(f"LoRA needs rank >= 1 and scaling > 0, got {self.rank} and {self.scaling}")


class _Adapter(nn.Module):
    """The low-rank pair: lora_A [rank, in], lora_B [out, rank]."""

    def _init_adapter(self, in_features: int, out_features: int, rank: int, scaling: float, like: Tensor):
        kw = dict(device=like.device, dtype=like.dtype)
        self.scaling = scaling
        self.lora_A = nn.Linear(in_features, rank, bias=False, **kw)  # type: ignore[arg-type]
        self.lora_B = nn.Linear(rank, out_features, bias=False, **kw)  # type: ignore[arg-type]
        if like.device.type != "meta":
            nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
            nn.init.zeros_(self.lora_B.weight)

    def delta(self) -> Tensor:
        """scaling * B @ A [out, in]."""
        return self.scaling * (self.lora_B.weight @ self.lora_A.weight)

    def adapt(self, x: Tensor) -> Tensor:
        return self.scaling * self.lora_B(self.lora_A(x))


class LoRALinear(nn.Linear, _Adapter):
    """A frozen nn.Linear plus an adapter; its base weight keeps the name `weight`."""

    def __init__(self, base: nn.Linear, rank: int, scaling: float):
        nn.Linear.__init__(self, base.in_features, base.out_features, bias=False, device="meta")
        self.weight = base.weight
        self.bias = base.bias
        self._init_adapter(base.in_features, base.out_features, rank, scaling, base.weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias) + self.adapt(x)

    def merged(self) -> nn.Linear:
        out = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None, device="meta")
        out.weight = nn.Parameter(
            (self.weight + self.delta()).detach(), requires_grad=self.weight.requires_grad
        )
        out.bias = self.bias
        return out


class LoRAProjection(HostRows, _Adapter):
    """A `HostRows` (rows of a stacked attention projection its host owns) plus an adapter,
    swapped in for it."""

    def __init__(self, base: HostRows, rank: int, scaling: float):
        super().__init__(base._host, base.attr, base.start, base.rows)
        weight = self.base()
        self._init_adapter(weight.shape[1], self.rows, rank, scaling, weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.base()) + self.adapt(x)

    @torch.no_grad()
    def merge(self) -> HostRows:
        """Fold the adapter into the host's weight; returns the plain rows to put back."""
        self.base().add_(self.delta().to(self.base().dtype))
        return HostRows(self._host, self.attr, self.start, self.rows)


def apply_lora(model: LMModel, options: LoRAOptions) -> LMModel:
    """Add adapters (in place) and freeze everything else (but the embeddings with
    `ft_embed`). Returns the model."""
    if has_lora(model):
        raise ValueError("the model already has LoRA adapters")
    for name, module in model.named_modules():
        if isinstance(module, (Attention, PerStepAttention)):
            for child_name, child in module.named_modules():
                if child_name and not isinstance(child, (HostRows, nn.Linear, nn.ModuleList)):
                    raise ValueError(f"{name}.{child_name} is already transformed (apply LoRA first)")
    for p in model.parameters():
        p.requires_grad_(False)
    r, s = options.rank, options.scaling

    def wanted(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in options.targets)

    for name, module in list(model.named_modules()):
        if isinstance(module, Attention) and wanted(f"{name}.in_proj"):
            assert isinstance(module.in_proj, HostRows)
            module.in_proj = LoRAProjection(module.in_proj, r, s)
        elif isinstance(module, PerStepAttention):
            for projs in ("in_projs", "out_projs"):
                if wanted(f"{name}.{projs}"):
                    host_rows = getattr(module, projs)
                    setattr(module, projs, nn.ModuleList(LoRAProjection(h, r, s) for h in host_rows))
    for parent_name, parent in list(model.named_modules()):
        if isinstance(parent, (_Adapter, PerStepAttention)):
            continue  # PerStepAttention.out_proj is only read through its slices
        for child_name, child in list(parent.named_children()):
            name = f"{parent_name}.{child_name}" if parent_name else child_name
            if type(child) is nn.Linear and wanted(name):
                setattr(parent, child_name, LoRALinear(child, r, s))
    if options.ft_embed:
        for m in model.modules():
            if isinstance(m, Embedding):
                m.weight.requires_grad_(True)
    return model


def has_lora(model: nn.Module) -> bool:
    return any(isinstance(m, _Adapter) for m in model.modules())


def adapters(model: nn.Module) -> Iterator[tuple[str, _Adapter]]:
    for name, m in model.named_modules():
        if isinstance(m, _Adapter):
            yield name, m


def lora_state_dict(
    model: LMModel, state: dict[str, Tensor] | None = None, ft_embed: bool | None = None
) -> dict[str, Tensor]:
    """The adapters' weights (Kyutai's names), plus the embedding tables when they are
    trained (`ft_embed`; None: when they require grad). Values from `state` (e.g. gathered
    from shards; default: the model's own)."""
    state = model.state_dict() if state is None else state
    out: dict[str, Tensor] = {}
    for name, _ in adapters(model):
        for part in ("lora_A", "lora_B"):
            key = f"{name}.{part}.weight"
            out[_OURS_TO_KYUTAI.sub(r".self_attn.\1s.0.lora_", key)] = state[key].detach()
    for name, m in model.named_modules():
        if isinstance(m, Embedding) and (m.weight.requires_grad if ft_embed is None else ft_embed):
            out[f"{name}.weight"] = state[f"{name}.weight"].detach()
    return out


def merged_state_dict(model: LMModel, state: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
    """The weights with every adapter folded in, under the base names (the model is left as
    it is). Values from `state` (default: the model's own)."""
    state = model.state_dict() if state is None else state
    out = {k: v.detach() for k, v in state.items() if ".lora_" not in k}
    for name, m in adapters(model):
        a, b = state[f"{name}.lora_A.weight"], state[f"{name}.lora_B.weight"]
        delta = (m.scaling * (b.float() @ a.float())).to(a.dtype)
        if isinstance(m, LoRALinear):
            key = f"{name}.weight"
            out[key] = out[key] + delta.to(out[key].dtype)
        else:
            assert isinstance(m, LoRAProjection)
            host = name.rsplit(".", 2 if re.search(r"\.\d+$", name) else 1)[0]
            key = f"{host}.{m.attr}"
            rows = slice(m.start, m.start + m.rows)
            out[key] = out[key].clone()
            out[key][rows] += delta.to(out[key].dtype)
    return out


def save_lora(
    model: LMModel, path: str | Path, options: LoRAOptions, state: dict[str, Tensor] | None = None
) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.contiguous().cpu() for k, v in lora_state_dict(model, state).items()}
    meta = {"lora_rank": str(options.rank), "lora_scaling": str(options.scaling)}
    save_file(tensors, str(path), metadata=meta)


def read_lora(path: str | Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """An adapter file's tensors (our names) and metadata."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            state = {_KYUTAI_TO_OURS.sub(r"\1.\2.lora_", k): f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path} is not a LoRA safetensors file: {e}") from e
    return state, meta


def load_lora(
    model: LMModel, path: str | Path, rank: int | None = None, scaling: float | None = None
) -> LMModel:
    """Adapters from a file (ours or moshi-finetune's) applied to `model`, in place. The rank
    comes from the tensors; the scaling from `scaling`, else the file's metadata (Kyutai's
    files have none: their `config.json` holds `lora_scaling`)."""
    state, meta = read_lora(path)
    ranks = {v.shape[0] for k, v in state.items() if k.endswith("lora_A.weight")}
    if len(ranks) != 1:
        raise ValueError(f"{path}: expected LoRA adapters of one rank, found ranks {sorted(ranks)}")
    found = ranks.pop()
    if rank is not None and rank != found:
        raise ValueError(f"{path}: the config says LoRA rank {rank}, the file holds rank {found}")
    if scaling is None:
        if "lora_scaling" not in meta:
            raise ValueError(f"{path} does not say its LoRA scaling: give it (config.json's lora_scaling)")
        scaling = float(meta["lora_scaling"])
    targets = _targets_of(state)
    apply_lora(model, LoRAOptions(rank=found, scaling=scaling, targets=targets))
    expected = model.state_dict()
    problems = [k for k, v in state.items() if k not in expected or expected[k].shape != v.shape]
    if problems:
        raise ValueError(f"{path} does not fit this model: {', '.join(problems[:6])}")
    dtype = model.dtype
    own = {
        k: v.to(dtype) if v.is_floating_point() and not k.startswith("condition_provider.") else v
        for k, v in state.items()
    }
    model.load_state_dict(own, strict=False, assign=False)
    return model


def _targets_of(state: dict[str, Tensor]) -> tuple[str, ...]:
    """The module names a file adapts (exact names as patterns)."""
    names = {k.rsplit(".lora_", 1)[0] for k in state if ".lora_" in k}
    grouped = {re.sub(r"\.(in_projs|out_projs)\.\d+$", r".\1", n) for n in names}
    return tuple(sorted(grouped))


@torch.no_grad()
def merge_lora(model: LMModel) -> LMModel:
    """Fold every adapter into its base weight and remove it (in place). Returns the model."""
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                setattr(parent, child_name, child.merged())
            elif isinstance(child, LoRAProjection):
                setattr(parent, child_name, child.merge())  # the host's own rows again
    return model
