"""The multi-scale STFT discriminator (EnCodec's MS-STFT-D, used by Mimi): one 2-D conv net
per STFT resolution, reading the complex spectrogram (real and imaginary parts as two
channels), returning per-patch logits and its feature maps (for feature matching)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

LEAKY_SLOPE = 0.2


@dataclass(frozen=True)
class DiscriminatorConfig:
    filters: int = 32  # channels of the first conv, doubled per dilated conv up to max_filters
    max_filters: int = 256
    n_ffts: tuple[int, ...] = (2048, 1024, 512, 256, 128)  # one discriminator each, hop n_fft / 4
    dilations: tuple[int, ...] = (1, 2, 4)  # time dilations of the strided convs


def _conv(c_in: int, c_out: int, kernel: tuple[int, int], stride=(1, 1), dilation=(1, 1)) -> nn.Module:
    padding = tuple((k - 1) * d // 2 for k, d in zip(kernel, dilation, strict=True))
    return weight_norm(nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation))


class STFTDiscriminator(nn.Module):
    """pcm [B, 1, T] -> (logits [B, 1, frames, bins'], feature maps [B, C_i, frames, bins_i])."""

    KERNEL = (3, 9)  # (time, frequency)
    window: Tensor  # [n_fft]

    def __init__(self, n_fft: int, cfg: DiscriminatorConfig):
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        k = self.KERNEL
        width = cfg.filters
        convs = [_conv(2, width, k)]
        for i, d in enumerate(cfg.dilations):
            out = min(cfg.filters * 2 ** (i + 1), cfg.max_filters)
            convs.append(_conv(width, out, k, stride=(1, 2), dilation=(d, 1)))
            width = out
        convs.append(_conv(width, width, (k[0], k[0])))
        self.convs = nn.ModuleList(convs)
        self.post = _conv(width, 1, (k[0], k[0]))

    def forward(self, pcm: Tensor) -> tuple[Tensor, list[Tensor]]:
        spec = torch.stft(
            pcm[:, 0], self.n_fft, self.hop, window=self.window, normalized=True, return_complex=True
        )  # [B, bins, frames]
        x = torch.view_as_real(spec).permute(0, 3, 2, 1)  # [B, 2, frames, bins]
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LEAKY_SLOPE)
            features.append(x)
        return self.post(x), features


class MultiScaleSTFTDiscriminator(nn.Module):
    """pcm [B, 1, T] -> one (logits, feature maps) per STFT resolution."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.discriminators = nn.ModuleList(STFTDiscriminator(n, cfg) for n in cfg.n_ffts)

    def forward(self, pcm: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        if pcm.dim() != 3 or pcm.shape[1] != 1:
            raise ValueError(f"pcm must have shape [B, 1, T], got {list(pcm.shape)}")
        return [d(pcm) for d in self.discriminators]
