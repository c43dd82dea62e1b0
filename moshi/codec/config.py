"""Mimi's configuration: one frozen dataclass, built from Kyutai's config dict format."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..audio import exact_div
from ..config_reader import ConfigReader

DECODER_FIELDS = ("decoder_n_filters",)  # MimiConfig fields that shape the decoder alone


@dataclass(frozen=True)
class MimiConfig:
    """Architecture of a Mimi codec. The defaults are the released model."""

    sample_rate: int = 24_000
    channels: int = 1
    frame_rate: float = 12.5
    # SEANet convolutional encoder/decoder.
    dimension: int = 512  # latent channels, also the transformers' width
    n_filters: int = 64
    decoder_n_filters: int | None = None  # the decoder's own n_filters (ours; None: n_filters)
    ratios: tuple[int, ...] = (8, 6, 5, 4)  # decoder strides; the encoder uses them reversed
    kernel_size: int = 7
    residual_kernel_size: int = 3
    last_kernel_size: int = 3
    n_residual_layers: int = 1
    dilation_base: int = 2
    compress: int = 2
    # Transformers run at the SEANet rate (25 Hz), before downsampling / after upsampling.
    num_heads: int = 8
    num_layers: int = 8
    dim_feedforward: int = 2048
    context: int = 250
    max_period: float = 10_000.0
    # Split residual vector quantizer: 1 semantic + (total - 1) acoustic codebooks.
    codebook_dim: int = 256
    codebook_size: int = 2048
    total_codebooks: int = 32
    semantic_codebooks: int = 1

    def __post_init__(self) -> None:
        exact_div(self.sample_rate, self.frame_rate)
        exact_div(self.encoder_frame_rate, self.frame_rate)
        if self.dimension % self.num_heads:
            raise ValueError(f"dimension {self.dimension} not divisible by num_heads {self.num_heads}")
        if self.decoder_filters < 1:
            raise ValueError(f"decoder_n_filters must be positive, got {self.decoder_n_filters}")
        if not 1 <= self.semantic_codebooks < self.total_codebooks:
            raise ValueError("need 1 <= semantic_codebooks < total_codebooks")

    @property
    def decoder_filters(self) -> int:
        """The decoder's n_filters: the width of its last stage (its first is 2^len(ratios) times that)."""
        return self.n_filters if self.decoder_n_filters is None else self.decoder_n_filters

    @property
    def hop_length(self) -> int:
        """Samples per SEANet latent step (960 for the released model)."""
        return math.prod(self.ratios)

    @property
    def encoder_frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def downsample_stride(self) -> int:
        return exact_div(self.encoder_frame_rate, self.frame_rate)

    @property
    def frame_size(self) -> int:
        """Samples per codec frame (1920 = 80 ms for the released model)."""
        return exact_div(self.sample_rate, self.frame_rate)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> MimiConfig:
        """A named architecture of MIMI_PRESETS, with some fields changed."""
        if name not in MIMI_PRESETS:
            raise ValueError(f"unknown Mimi preset {name!r}; expected one of {', '.join(MIMI_PRESETS)}")
        return cls(**{**MIMI_PRESETS[name], **overrides})

    def to_kyutai(self, layer_scale: float = 0.01) -> dict[str, Any]:
        """This configuration in Kyutai's Mimi config format (what `from_kyutai` reads back).
        `layer_scale` is the transformers' initial LayerScale, kept for Kyutai's loader."""
        d = self.dimension
        seanet = {
            "channels": self.channels,
            "dimension": d,
            "causal": True,
            "n_filters": self.n_filters,
            "n_residual_layers": self.n_residual_layers,
            "activation": "ELU",
            "compress": self.compress,
            "dilation_base": self.dilation_base,
            "disable_norm_outer_blocks": 0,
            "kernel_size": self.kernel_size,
            "residual_kernel_size": self.residual_kernel_size,
            "last_kernel_size": self.last_kernel_size,
            "norm": "none",
            "pad_mode": "constant",
            "ratios": list(self.ratios),
            "true_skip": True,
        }
        if self.decoder_n_filters is not None:  # not in Kyutai's format: only when set
            seanet["decoder_n_filters"] = self.decoder_n_filters
        quantizer = {
            "dimension": self.codebook_dim,
            "n_q": self.total_codebooks,
            "n_q_semantic": self.semantic_codebooks,
            "bins": self.codebook_size,
            "input_dimension": d,
            "output_dimension": d,
        }
        transformer = {
            "d_model": d,
            "num_heads": self.num_heads,
            "num_layers": self.num_layers,
            "causal": True,
            "layer_scale": layer_scale,
            "context": self.context,
            "conv_layout": True,
            "max_period": self.max_period,
            "gating": "none",
            "norm": "layer_norm",
            "positional_embedding": "rope",
            "dim_feedforward": self.dim_feedforward,
            "input_dimension": d,
            "output_dimensions": [d],
        }
        rates = {"sample_rate": self.sample_rate, "channels": self.channels, "frame_rate": self.frame_rate}
        return {**rates, "seanet": seanet, "quantizer": quantizer, "transformer": transformer}

    @classmethod
    def from_kyutai(cls, config: dict[str, Any] | str | Path) -> MimiConfig:
        """Build from Kyutai's Mimi config format (`loaders._mimi_config`, a `mimi_config_name`
        json): top-level rates plus `seanet`, `quantizer` and `transformer` sections.

        Values we do not implement (non-causal, other norms...) raise ValueError; keys we
        do not know are named in a warning.
        """
        data = config if isinstance(config, dict) else json.loads(Path(config).read_text())
        reader = ConfigReader(data, "mimi config")
        sea = ConfigReader(reader.pop("seanet", {}), "seanet")
        quant = ConfigReader(reader.pop("quantizer", {}), "quantizer")
        tr = ConfigReader(reader.pop("transformer", {}), "transformer")
        kwargs: dict[str, Any] = {}
        for key in ("sample_rate", "channels", "frame_rate"):
            reader.take(key, kwargs)
        kwargs["dimension"] = sea.pop("dimension", 512)
        for key in (
            "n_filters",
            "decoder_n_filters",
            "kernel_size",
            "residual_kernel_size",
            "last_kernel_size",
            "n_residual_layers",
            "dilation_base",
            "compress",
        ):
            sea.take(key, kwargs)
        if "ratios" in sea.data:
            kwargs["ratios"] = tuple(sea.pop("ratios"))
        if sea.pop("channels", kwargs.get("channels", 1)) != kwargs.get("channels", 1):
            raise ValueError("seanet.channels must equal channels")
        sea.require("causal", True)
        sea.require("activation", "ELU")
        sea.require("norm", "none")
        sea.require("pad_mode", "constant")
        sea.require("true_skip", True)
        sea.require("disable_norm_outer_blocks", 0)
        sea.require("activation_params", {"alpha": 1.0})
        sea.require("final_activation", None)
        sea.require("lstm", 0)

        quant.rename("dimension", "codebook_dim", kwargs)
        quant.rename("bins", "codebook_size", kwargs)
        quant.rename("n_q", "total_codebooks", kwargs)
        quant.rename("n_q_semantic", "semantic_codebooks", kwargs)
        for key in ("input_dimension", "output_dimension"):
            quant.require(key, kwargs["dimension"])

        tr.require("d_model", kwargs["dimension"])
        tr.require("input_dimension", kwargs["dimension"])
        if tr.data.pop("output_dimensions", [kwargs["dimension"]]) != [kwargs["dimension"]]:
            raise ValueError("transformer.output_dimensions must be [d_model]")
        for key in ("num_heads", "num_layers", "dim_feedforward", "context", "max_period"):
            tr.take(key, kwargs)
        tr.pop("layer_scale", None)  # initial value only; the learnt scales are weights
        tr.require("causal", True)
        tr.require("conv_layout", True)
        tr.require("gating", "none")
        tr.require("norm", "layer_norm")
        tr.require("positional_embedding", "rope")
        tr.require("bias_ff", False)
        tr.require("bias_attn", False)
        for r in (reader, sea, quant, tr):
            r.warn_unknown()
        return cls(**kwargs)


# Named architectures: MimiConfig(**MIMI_PRESETS[name]), or MimiConfig.preset(name).
MIMI_PRESETS: dict[str, dict[str, Any]] = {
    "mimi": {},  # the released model (79 M parameters, 32 codebooks of 2048)
    # The project's own small codec (issue 13): 8 codebooks of 256 at 12.5 Hz, 5.5 M parameters
    # (22 MB in float32), SEANet 4x narrower, two transformer layers each side.
    "mimi-small": dict(
        n_filters=16,
        dimension=256,
        num_layers=2,
        num_heads=4,
        dim_feedforward=1024,
        codebook_dim=64,
        codebook_size=256,
        total_codebooks=8,
    ),
}
