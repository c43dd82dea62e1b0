"""Conditions: what a model is told besides its token streams (a voice, a style, a CFG level).

Each conditioner turns one kind of value into vectors of the model's width:

- `tensor` (e.g. `speaker_wavs`, the TTS voices): a sequence [S, dim] per item, with a mask
  saying which positions hold data, projected by `output_proj`;
- `lut` (lookup table, e.g. `control`, `cfg`): a string from `possible_values`, looked up
  in `embed` (n_bins + 1 rows, the last for "absent") and projected by `output_proj`.

Wherever an item lacks the condition (an absent value, a masked position) the output is
the conditioner's `learnt_padding`. The fuser then routes each condition: `sum` ones are
added to every step's input embedding, `cross` ones are concatenated (with an optional
scaled sinusoidal position embedding) into the source of the cross-attention layers.

Parameter names follow Kyutai's checkpoints: `condition_provider.conditioners.<name>.*`.
These stay in float32 when the LM is cast to a lower precision (as the reference does).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..config_reader import ConfigReader

ConditionerKind = Literal["lut", "tensor"]


@dataclass(frozen=True)
class ConditionerConfig:
    """One entry of Kyutai's `conditioners` config."""

    name: str
    kind: ConditionerKind
    dim: int  # width of the values (tensor) or of the table's rows (lut)
    n_bins: int = 0  # lut: rows besides the "absent" one
    possible_values: tuple[str, ...] = ()  # lut: value i selects row i

    def __post_init__(self) -> None:
        where = f"config.conditioners.{self.name}"
        if self.dim < 1:
            raise ValueError(f"{where}: dim must be >= 1, got {self.dim}")
        if self.kind == "lut" and not 0 < len(self.possible_values) <= self.n_bins:
            raise ValueError(
                f"{where}: needs 1 to n_bins={self.n_bins} possible_values, got {len(self.possible_values)}"
            )


@dataclass(frozen=True)
class FuserConfig:
    """Kyutai's `fuser` config: where each condition goes."""

    sum: tuple[str, ...] = ()  # added to every step's input embedding
    cross: tuple[str, ...] = ()  # concatenated into the cross-attention source
    cross_attention_pos_emb: bool = False
    cross_attention_pos_emb_scale: float = 1.0


def parse_conditioners(data: Any) -> tuple[ConditionerConfig, ...]:
    if not isinstance(data, dict):
        raise ValueError(f"config.conditioners must be a JSON object, got {type(data).__name__}")
    out = []
    for name, spec in data.items():
        where = f"config.conditioners.{name}"
        r = ConfigReader(spec, where)
        kind = r.pop("type")
        if kind not in ("lut", "tensor"):
            raise ValueError(f"{where}.type={kind!r} is not supported (only 'lut' or 'tensor')")
        k = ConfigReader(r.pop(kind) or {}, f"{where}.{kind}")
        r.warn_unknown()
        if "dim" not in k.data:
            raise ValueError(f"{where}.{kind}.dim is missing")
        dim = int(k.pop("dim"))
        if kind == "tensor":
            k.warn_unknown()
            out.append(ConditionerConfig(name, "tensor", dim))
            continue
        k.require("tokenizer", "noop")
        values = k.pop("possible_values")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"{where}.lut.possible_values must be a list of strings")
        n_bins = int(k.pop("n_bins", len(values)))
        k.warn_unknown()
        out.append(ConditionerConfig(name, "lut", dim, n_bins, tuple(values)))
    return tuple(out)


def parse_fuser(data: Any) -> FuserConfig:
    r = ConfigReader(data, "config.fuser")
    names: dict[str, tuple[str, ...]] = {}
    for key in ("sum", "cross"):
        value = r.pop(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"config.fuser.{key} must be a list of condition names")
        names[key] = tuple(value)
    for key in ("prepend", "input_interpolate"):  # other fusing methods: not implemented
        if r.pop(key):
            raise ValueError(f"config.fuser.{key} is not supported (only 'sum' and 'cross')")
    fuser = FuserConfig(
        sum=names["sum"],
        cross=names["cross"],
        cross_attention_pos_emb=bool(r.pop("cross_attention_pos_emb", False)),
        cross_attention_pos_emb_scale=float(r.pop("cross_attention_pos_emb_scale", 1.0)),
    )
    r.warn_unknown()
    return fuser


# -- values -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorCondition:
    """A tensor condition's value for one item: data [S, dim], mask [S] (True: data)."""

    data: Tensor
    mask: Tensor

    def __post_init__(self) -> None:
        if self.data.dim() != 2 or self.mask.shape != self.data.shape[:1] or self.mask.dtype != torch.bool:
            raise ValueError(
                f"a tensor condition is data [S, dim] with a bool mask [S], got data "
                f"{list(self.data.shape)} and mask {self.mask.dtype} {list(self.mask.shape)}"
            )

    def dropped(self) -> TensorCondition:
        """The same shape with nothing in it (every position takes the learnt padding)."""
        return TensorCondition(torch.zeros_like(self.data), torch.zeros_like(self.mask))


ConditionValue = str | TensorCondition | None  # None: absent
ConditionValues = Mapping[str, ConditionValue]  # one item's conditions, by conditioner name


def drop_all(values: ConditionValues) -> dict[str, ConditionValue]:
    """The null conditions of classifier-free guidance: every condition absent, tensor
    conditions keeping their shape."""
    return {k: v.dropped() if isinstance(v, TensorCondition) else None for k, v in values.items()}


@dataclass
class Conditions:
    """Prepared conditions of a batch, in float32."""

    sum: Tensor | None  # [B, 1, D] added to every step's input
    cross: Tensor | None  # [B, S, D] the cross-attention source


# -- modules ----------------------------------------------------------------------------------
class LUTConditioner(nn.Module):
    def __init__(self, cfg: ConditionerConfig, model_dim: int):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_bins + 1, cfg.dim)
        self.output_proj = nn.Linear(cfg.dim, model_dim, bias=False)
        self.learnt_padding = nn.Parameter(torch.zeros(1, 1, model_dim))

    def forward(self, values: Sequence[ConditionValue]) -> Tensor:
        """One value (or None) per item -> [B, 1, model_dim]."""
        index = [self._index(v) for v in values]
        idx = torch.tensor(index, device=self.embed.weight.device)
        out = self.output_proj(self.embed(idx))[:, None]  # [B, 1, D]
        present = (idx < self.cfg.n_bins)[:, None, None]
        return torch.where(present, out, self.learnt_padding)

    def _index(self, value: ConditionValue) -> int:
        if value is None:
            return self.cfg.n_bins
        if not isinstance(value, str) or value not in self.cfg.possible_values:
            valid = ", ".join(repr(v) for v in self.cfg.possible_values)
            raise ValueError(f"condition {self.cfg.name!r} got {value!r}; valid values: {valid} (or None)")
        return self.cfg.possible_values.index(value)


class TensorConditioner(nn.Module):
    def __init__(self, cfg: ConditionerConfig, model_dim: int):
        super().__init__()
        self.cfg = cfg
        self.output_proj = nn.Linear(cfg.dim, model_dim, bias=False)
        self.learnt_padding = nn.Parameter(torch.zeros(1, 1, model_dim))

    def forward(self, values: Sequence[ConditionValue]) -> Tensor:
        """One `TensorCondition` (or None) per item -> [B, S, model_dim]. Present items must
        share S; absent items are all padding (of length S, or 1 if none is present)."""
        w = self.output_proj.weight
        present: list[TensorCondition] = []
        for v in values:
            if v is None:
                continue
            if not isinstance(v, TensorCondition) or v.data.shape[-1] != self.cfg.dim:
                got = list(v.data.shape) if isinstance(v, TensorCondition) else type(v).__name__
                raise ValueError(f"condition {self.cfg.name!r} takes data [S, {self.cfg.dim}], got {got}")
            present.append(v)
        lengths = {v.data.shape[0] for v in present}
        if len(lengths) > 1:
            raise ValueError(f"condition {self.cfg.name!r}: items have different lengths {sorted(lengths)}")
        S = lengths.pop() if lengths else 1
        data = torch.zeros(len(values), S, self.cfg.dim, device=w.device, dtype=w.dtype)
        mask = torch.zeros(len(values), S, dtype=torch.bool, device=w.device)
        for b, v in enumerate(values):
            if isinstance(v, TensorCondition):
                data[b] = v.data
                mask[b] = v.mask
        return torch.where(mask[..., None], self.output_proj(data), self.learnt_padding)


class ConditionProvider(nn.Module):
    def __init__(self, configs: Sequence[ConditionerConfig], model_dim: int):
        super().__init__()
        self.conditioners = nn.ModuleDict(
            {
                c.name: LUTConditioner(c, model_dim) if c.kind == "lut" else TensorConditioner(c, model_dim)
                for c in configs
            }
        )

    def forward(self, values: Sequence[ConditionValues]) -> dict[str, Tensor]:
        """One mapping name -> value per item -> name -> [B, S_name, model_dim] (float32).
        Each item's present conditions are computed on their own, so that an item gets the
        same vectors whatever else is in the batch."""
        for item in values:
            unknown = set(item) - set(self.conditioners)
            if unknown:
                raise ValueError(
                    f"unknown conditions {sorted(unknown)}; this model has {sorted(self.conditioners)}"
                )
        out = {}
        for name, c in self.conditioners.items():
            column = [item.get(name) for item in values]
            out[name] = c(column)  # absent items, and the shapes of the batch
            for b, value in enumerate(column):
                if value is not None and len(column) > 1:
                    out[name][b] = c([value])[0]
        return out


def sin_embedding(length: int, dim: int, device: torch.device, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal positions [1, length, dim]: cos then sin of p / max_period^(i / (dim/2 - 1))."""
    half = dim // 2
    positions = torch.arange(length, device=device, dtype=torch.float32)[None, :, None]
    freqs = torch.arange(half, device=device, dtype=torch.float32)[None, None, :]
    phase = positions / torch.tensor(max_period, device=device) ** (freqs / (half - 1))
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)


def fuse(outputs: Mapping[str, Tensor], fuser: FuserConfig) -> Conditions:
    """Conditioner outputs -> what the model consumes."""
    total: Tensor | None = None
    for name in fuser.sum:
        total = outputs[name] if total is None else total + outputs[name]
    cross = torch.cat([outputs[name] for name in fuser.cross], dim=1) if fuser.cross else None
    if cross is not None and fuser.cross_attention_pos_emb:
        pos = sin_embedding(cross.shape[1], cross.shape[2], cross.device)
        cross = cross + fuser.cross_attention_pos_emb_scale * pos
    return Conditions(sum=total, cross=cross)


def check_fuser(conditioners: Sequence[ConditionerConfig], fuser: FuserConfig | None, cross: bool) -> None:
    """The fuser names existing conditioners; summed ones are lookup tables (one vector);
    cross-attention layers exist exactly when something feeds them."""
    by_name = {c.name: c for c in conditioners}
    if fuser is None:
        if conditioners:
            raise ValueError("config.conditioners needs a config.fuser saying where each one goes")
        if cross:
            raise ValueError("config.cross_attention needs conditioners and a fuser with 'cross'")
        return
    for name in fuser.sum + fuser.cross:
        if name not in by_name:
            raise ValueError(f"config.fuser names {name!r}, which is not in config.conditioners")
    for name in fuser.sum:
        if by_name[name].kind != "lut":
            raise ValueError(f"config.fuser.sum: {name!r} is a {by_name[name].kind} condition (only 'lut')")
    if cross != bool(fuser.cross):
        raise ValueError("config.cross_attention must be true exactly when config.fuser.cross is not empty")
    if math.isnan(fuser.cross_attention_pos_emb_scale):
        raise ValueError("config.fuser.cross_attention_pos_emb_scale is NaN")
