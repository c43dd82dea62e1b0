"""Mimi's split residual vector quantizer.

Two residual VQs read the *same* latent: `rvq_first` (1 semantic codebook) and `rvq_rest`
(the acoustic codebooks). Residuals are taken within each group only. Decoding sums the
two groups' outputs. Codebooks hold EMA statistics; the centroids are
`embedding_sum / max(cluster_usage, 1e-5)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import MimiConfig

CLUSTER_USAGE_EPS = 1e-5


class Codebook(nn.Module):
    """`size` centroids of dimension `dim`, derived from the checkpoint's EMA buffers."""

    cluster_usage: Tensor  # [size]
    embedding_sum: Tensor  # [size, dim]
    centroids: Tensor  # [size, dim]
    augmented: Tensor  # [size, dim + 2]

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("_initialized", torch.zeros(1))
        self.register_buffer("cluster_usage", torch.ones(size))
        self.register_buffer("embedding_sum", torch.zeros(size, dim))
        self.register_buffer("centroids", torch.zeros(size, dim), persistent=False)
        # [centroid, 1, |centroid|^2]: the centroid side of the distance product, see `encode`.
        self.register_buffer("augmented", torch.zeros(size, dim + 2), persistent=False)
        self.register_load_state_dict_post_hook(lambda module, _keys: module.refresh())

    def refresh(self) -> None:
        """Recompute the centroids from the EMA statistics (after loading weights)."""
        usage = self.cluster_usage.clamp(min=CLUSTER_USAGE_EPS)[:, None]
        self.centroids = self.embedding_sum / usage
        c = self.centroids
        self.augmented = torch.cat([c, torch.ones_like(c[:, :1]), c.pow(2).sum(-1, keepdim=True)], -1)

    def encode(self, x: Tensor) -> Tensor:
        """x: [N, dim] -> index of the nearest centroid [N] (Euclidean).

        Distances are computed the way `torch.cdist` computes them for large inputs (and so
        the way the reference does, bit for bit): sqrt(|x|^2 - 2 x.c + |c|^2) as one product
        [-2x, |x|^2, 1] @ [c, 1, |c|^2]^T, with the centroid side computed once at load."""
        x_side = torch.cat([x * -2, x.pow(2).sum(-1, keepdim=True), torch.ones_like(x[:, :1])], -1)
        distances = (x_side @ self.augmented.mT).clamp_min_(1e-30).sqrt_()
        return distances.argmin(dim=-1)


class ResidualVQ(nn.Module):
    """Projects [B, D_latent, T] to the codebook space, quantizes residually, projects back."""

    def __init__(self, cfg: MimiConfig, num_codebooks: int):
        super().__init__()
        self.input_proj = nn.Conv1d(cfg.dimension, cfg.codebook_dim, 1, bias=False)
        self.output_proj = nn.Conv1d(cfg.codebook_dim, cfg.dimension, 1, bias=False)
        self.codebooks: list[Codebook] = nn.ModuleList(  # type: ignore[assignment]
            Codebook(cfg.codebook_size, cfg.codebook_dim) for _ in range(num_codebooks)
        )

    def encode(self, x: Tensor, n: int) -> Tensor:
        """x: [B, D_latent, T] -> codes [B, n, T] from the first n codebooks."""
        B, _, T = x.shape
        residual = self.input_proj(x).transpose(1, 2).reshape(B * T, -1)
        codes = []
        for codebook in self.codebooks[:n]:
            idx = codebook.encode(residual)
            residual = residual - codebook.centroids[idx]
            codes.append(idx)
        return torch.stack(codes, dim=1).view(B, T, n).transpose(1, 2)

    def decode(self, codes: Tensor) -> Tensor:
        """codes: [B, n, T] -> [B, D_latent, T]."""
        quantized = F.embedding(codes[:, 0], self.codebooks[0].centroids)  # [B, T, dim]
        for i in range(1, codes.shape[1]):
            quantized = quantized + F.embedding(codes[:, i], self.codebooks[i].centroids)
        return self.output_proj(quantized.transpose(1, 2))


class SplitResidualVQ(nn.Module):
    def __init__(self, cfg: MimiConfig):
        super().__init__()
        self.semantic = cfg.semantic_codebooks
        self.rvq_first = ResidualVQ(cfg, cfg.semantic_codebooks)
        self.rvq_rest = ResidualVQ(cfg, cfg.total_codebooks - cfg.semantic_codebooks)

    def encode(self, x: Tensor, n: int) -> Tensor:
        """x: [B, D_latent, T] -> codes [B, n, T], semantic first."""
        codes = self.rvq_first.encode(x, min(n, self.semantic))
        if n > self.semantic:
            codes = torch.cat([codes, self.rvq_rest.encode(x, n - self.semantic)], dim=1)
        return codes

    def decode(self, codes: Tensor) -> Tensor:
        """codes: [B, n, T] -> latent [B, D_latent, T]."""
        out = self.rvq_first.decode(codes[:, : self.semantic])
        if codes.shape[1] > self.semantic:
            out = out + self.rvq_rest.decode(codes[:, self.semantic :])
        return out
