"""SEANet: the convolutional encoder (24 kHz -> 25 Hz latents) and decoder (back)."""

from __future__ import annotations

from torch import Tensor, nn

from .config import MimiConfig
from .conv import CausalConv1d, CausalConvTranspose1d


class ResidualBlock(nn.Module):
    """x + conv1x1(ELU(conv_k(ELU(x)))), the hidden width divided by `compress`.

    Indices 1 and 3 of `block` are the convs, as in Kyutai's checkpoints."""

    def __init__(self, dim: int, kernel_size: int, dilation: int, compress: int):
        super().__init__()
        hidden = dim // compress
        self.block = nn.Sequential(
            nn.ELU(),
            CausalConv1d(dim, hidden, kernel_size, dilation=dilation),
            nn.ELU(),
            CausalConv1d(hidden, dim, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


def _residual_blocks(cfg: MimiConfig, dim: int) -> list[nn.Module]:
    return [
        ResidualBlock(dim, cfg.residual_kernel_size, cfg.dilation_base**j, cfg.compress)
        for j in range(cfg.n_residual_layers)
    ]


class SEANetEncoder(nn.Module):
    """pcm [B, channels, T] -> latent [B, dimension, T / hop_length]."""

    def __init__(self, cfg: MimiConfig):
        super().__init__()
        width = cfg.n_filters
        layers: list[nn.Module] = [CausalConv1d(cfg.channels, width, cfg.kernel_size)]
        for ratio in reversed(cfg.ratios):
            layers += _residual_blocks(cfg, width)
            layers += [nn.ELU(), CausalConv1d(width, 2 * width, 2 * ratio, stride=ratio)]
            width *= 2
        layers += [nn.ELU(), CausalConv1d(width, cfg.dimension, cfg.last_kernel_size)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class SEANetDecoder(nn.Module):
    """latent [B, dimension, S] -> pcm [B, channels, S * hop_length]."""

    def __init__(self, cfg: MimiConfig):
        super().__init__()
        width = cfg.decoder_filters * 2 ** len(cfg.ratios)
        layers: list[nn.Module] = [CausalConv1d(cfg.dimension, width, cfg.kernel_size)]
        for ratio in cfg.ratios:
            layers += [nn.ELU(), CausalConvTranspose1d(width, width // 2, 2 * ratio, stride=ratio)]
            width //= 2
            layers += _residual_blocks(cfg, width)
        layers += [nn.ELU(), CausalConv1d(width, cfg.channels, cfg.last_kernel_size)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)
