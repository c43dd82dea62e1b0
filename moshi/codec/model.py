"""Mimi: 24 kHz speech <-> residual-VQ codes at 12.5 Hz, causal, streamable.

encode: pcm -> SEANet encoder (25 Hz) -> transformer -> stride-2 conv (12.5 Hz) -> RVQ codes
decode: codes -> RVQ centroids -> depthwise stride-2 transposed conv (25 Hz) -> transformer
        -> SEANet decoder -> pcm
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import streaming as st
from .config import MimiConfig
from .conv import CausalConv1d, CausalConvTranspose1d
from .quantizer import Quantized, SplitResidualVQ, VQTraining
from .seanet import SEANetDecoder, SEANetEncoder
from .transformer import CodecTransformer

P = ParamSpec("P")
R = TypeVar("R")


def full_float32(fn: Callable[P, R]) -> Callable[P, R]:
    """Run `fn` with true float32 convolutions and matmuls on CUDA: cuDNN uses TF32 for
    convolutions by default on recent GPUs, which is ~1e-3 off, too far for codec parity."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        cudnn = torch.backends.cudnn
        with cudnn.flags(cudnn.enabled, cudnn.benchmark, deterministic=cudnn.deterministic, allow_tf32=False):
            previous = torch.get_float32_matmul_precision()
            torch.set_float32_matmul_precision("highest")
            try:
                return fn(*args, **kwargs)
            finally:
                torch.set_float32_matmul_precision(previous)

    return wrapper


class Mimi(nn.Module):
    """The codec. Shapes: pcm [B, 1, T] at `sample_rate`; codes [B, K, F] int64, F frames
    of `frame_size` samples; latents [B, dimension, F]."""

    def __init__(self, config: MimiConfig, num_codebooks: int = 8):
        super().__init__()
        cfg = self.config = config
        d, s = cfg.dimension, cfg.downsample_stride
        self.encoder = SEANetEncoder(cfg)
        self.encoder_transformer = CodecTransformer(cfg)
        self.downsample = CausalConv1d(d, d, 2 * s, stride=s, bias=False, pad_mode="replicate")
        self.quantizer = SplitResidualVQ(cfg)
        self.upsample = CausalConvTranspose1d(d, d, 2 * s, stride=s, groups=d, bias=False)
        self.decoder_transformer = CodecTransformer(cfg)
        self.decoder = SEANetDecoder(cfg)
        self._num_codebooks = 0
        self.set_num_codebooks(num_codebooks)
        self._stream_batch: int | None = None

    # -- facts -----------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def frame_rate(self) -> float:
        return self.config.frame_rate

    @property
    def frame_size(self) -> int:
        return self.config.frame_size

    @property
    def num_codebooks(self) -> int:
        """Codebooks produced by `encode` (8 for Moshi, 32 for speech-to-text)."""
        return self._num_codebooks

    @property
    def total_codebooks(self) -> int:
        return self.config.total_codebooks

    @property
    def cardinality(self) -> int:
        return self.config.codebook_size

    def set_num_codebooks(self, n: int) -> None:
        if not 1 <= n <= self.total_codebooks:
            raise ValueError(f"num_codebooks must be in [1, {self.total_codebooks}], got {n}")
        self._num_codebooks = n

    @property
    def encoding(self) -> dict[str, nn.Module]:
        """The modules that make the codes, by name: training any other changes no code."""
        names = ("encoder", "encoder_transformer", "downsample", "quantizer")
        return {name: getattr(self, name) for name in names}

    # -- encode / decode -------------------------------------------------------------------
    @torch.no_grad()
    @full_float32
    def encode_to_latent(self, pcm: Tensor) -> Tensor:
        """pcm [B, 1, T] -> unquantized latent [B, dimension, F]. Offline, T is right-padded
        with zeros to whole frames; streaming, T must be a positive multiple of frame_size."""
        self._check_pcm(pcm)
        if self._stream_batch is None:
            pcm = F.pad(pcm, (0, -pcm.shape[-1] % self.frame_size))
        return self._latent(pcm)

    def _latent(self, pcm: Tensor) -> Tensor:
        """pcm [B, 1, F * frame_size] -> latent [B, dimension, F]."""
        return self.downsample(self.encoder_transformer(self.encoder(pcm)))

    def synthesize(self, latent: Tensor) -> Tensor:
        """latent [B, dimension, F] -> pcm [B, 1, F * frame_size] (differentiable: `decode`
        is this on `decode_latent`)."""
        return self.decoder(self.decoder_transformer(self.upsample(latent)))

    @torch.no_grad()
    def encode(self, pcm: Tensor) -> Tensor:
        """pcm [B, 1, T] -> codes [B, num_codebooks, F] (int64)."""
        return self.quantizer.encode(self.encode_to_latent(pcm), self.num_codebooks)

    @torch.no_grad()
    def decode_latent(self, codes: Tensor) -> Tensor:
        """codes [B, K, F] -> quantized latent [B, dimension, F] (before upsampling)."""
        self._check_codes(codes)
        return self.quantizer.decode(codes)

    @torch.no_grad()
    @full_float32
    def decode(self, codes: Tensor) -> Tensor:
        """codes [B, K, F] -> pcm [B, 1, F * frame_size]."""
        return self.synthesize(self.decode_latent(codes))

    def forward(
        self, pcm: Tensor, num_codebooks: int | None = None, opts: VQTraining | None = None
    ) -> tuple[Tensor, Quantized]:
        """Training's differentiable round trip: pcm [B, 1, F * frame_size] -> (reconstruction
        [B, 1, F * frame_size], the quantizer's output with codes [B, n, F]). n is
        `num_codebooks` (default: every codebook); in training mode the quantizer also
        learns (EMA codebooks, dropout, quantization rate: see `VQTraining`). Offline only."""
        self._check_pcm(pcm)
        if self.is_streaming or pcm.shape[-1] % self.frame_size:
            raise ValueError(
                f"forward takes whole frames offline: T must be a multiple of {self.frame_size}, "
                f"got {pcm.shape[-1]}{' while streaming' if self.is_streaming else ''}"
            )
        q = self.quantizer(self._latent(pcm), num_codebooks or self.total_codebooks, opts)
        return self.synthesize(q.latent), q

    # -- streaming -------------------------------------------------------------------------
    @contextmanager
    def streaming(self, batch_size: int) -> Iterator[None]:
        """Inside, `encode` takes whole frames and `decode` whole code frames, and each call
        continues the streams of the previous ones (one stream per batch item)."""
        with st.streaming(self, batch_size):
            self._stream_batch = batch_size
            try:
                yield
            finally:
                self._stream_batch = None

    @property
    def is_streaming(self) -> bool:
        return self._stream_batch is not None

    def reset_streaming(self, mask: Tensor | None = None) -> None:
        """Restart every stream, or those where `mask` [B] (bool) is True."""
        st.reset_streaming(self, self._require_streaming(), mask)

    def set_exec_mask(self, mask: Tensor | None) -> None:
        """Batch items where `mask` [B] is False are paused: the next calls leave their
        state untouched (and their outputs are meaningless). None: all items run."""
        st.set_exec_mask(self, self._require_streaming(), mask)

    def _require_streaming(self) -> int:
        if self._stream_batch is None:
            raise RuntimeError("this needs streaming mode: use `with mimi.streaming(batch_size):`")
        return self._stream_batch

    # -- input checks ----------------------------------------------------------------------
    def _check_pcm(self, pcm: Tensor) -> None:
        if not isinstance(pcm, Tensor) or not pcm.is_floating_point():
            raise TypeError(f"pcm must be a float tensor [B, {self.config.channels}, T]")
        if pcm.dim() != 3 or pcm.shape[1] != self.config.channels:
            raise ValueError(f"pcm must have shape [B, {self.config.channels}, T], got {list(pcm.shape)}")
        if self._stream_batch is not None:
            T = pcm.shape[-1]
            if T == 0 or T % self.frame_size:
                raise ValueError(
                    f"streaming encode takes whole frames: T must be a positive multiple of "
                    f"{self.frame_size}, got {T}"
                )
            self._check_batch(pcm.shape[0])

    def _check_codes(self, codes: Tensor) -> None:
        if not isinstance(codes, Tensor) or codes.dtype not in (torch.int64, torch.int32):
            raise TypeError("codes must be an int64 tensor [B, K, F]")
        if codes.dim() != 3:
            raise ValueError(f"codes must have shape [B, K, F], got {list(codes.shape)}")
        if not 1 <= codes.shape[1] <= self.total_codebooks:
            raise ValueError(f"codes have {codes.shape[1]} codebooks, expected 1 to {self.total_codebooks}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.cardinality):
            raise ValueError(
                f"codes must be in [0, {self.cardinality}), got values in "
                f"[{int(codes.min())}, {int(codes.max())}]"
            )
        if self._stream_batch is not None:
            if codes.shape[-1] == 0:
                raise ValueError("streaming decode takes at least one code frame, got 0")
            self._check_batch(codes.shape[0])

    def _check_batch(self, batch: int) -> None:
        if batch != self._stream_batch:
            raise ValueError(f"streaming with batch size {self._stream_batch}, got a batch of {batch}")
