"""Mimi's split residual vector quantizer.

Two residual VQs read the *same* latent: `rvq_first` (1 semantic codebook) and `rvq_rest`
(the acoustic codebooks). Residuals are taken within each group only. Decoding sums the
two groups' outputs. Codebooks hold EMA statistics; the centroids are
`embedding_sum / max(cluster_usage, 1e-5)`.

`encode`/`decode` are inference. `forward` is training's differentiable path: in training
mode it also updates the codebooks by exponential moving averages (the checkpoint's
`embedding_sum` and `cluster_usage`, summed over processes under torch.distributed),
seeds them from the first batch, re-seeds dead codes from the batch, drops codebooks per
item (quantizer dropout) and quantizes only some items (quantization rate). In eval mode
it quantizes like `encode` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from .config import MimiConfig

CLUSTER_USAGE_EPS = 1e-5


@dataclass(frozen=True)
class VQTraining:
    """How the quantizer trains (read only in training mode).

    Usages are in units of the uniform usage: the vectors per step divided by the codebook size."""

    ema_decay: float = 0.99
    dead_usage_ratio: float = 0.1  # a code used less than this is re-seeded from the batch
    replaced_usage_ratio: float = 1.0  # a re-seeded code starts with this usage
    quantizer_dropout: bool = True  # each item uses a random number of codebooks, 1 to n
    quantize_rate: float = 0.5  # the share of items quantized, the others pass unquantized (the paper: 0.5)

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.quantize_rate <= 1.0:
            raise ValueError(f"quantize_rate must be in [0, 1], got {self.quantize_rate}")


@dataclass
class Quantized:
    """The quantizer's training output."""

    latent: Tensor  # [B, D_latent, T] quantized (straight-through gradient to the input)
    codes: Tensor  # [B, n, T] int64 (codes past an item's dropout count are meaningless)
    commitment: Tensor  # [] mean squared distance of the residuals to their centroids
    semantic: Tensor  # [B, D_latent, T] the semantic group's output alone (for distillation)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _all_reduce_sum(t: Tensor) -> Tensor:
    if _distributed():
        dist.all_reduce(t)
    return t


def _shared_samples(x: Tensor, n: int) -> Tensor | None:
    """n rows of x [N, dim] drawn at random (with replacement when N < n): [n, dim], the
    same on every process (drawn by the first one with rows); None when none has any."""
    if x.shape[0] >= n:
        local = x[torch.randperm(x.shape[0], device=x.device)[:n]]
    elif x.shape[0]:
        local = x[torch.randint(x.shape[0], (n,), device=x.device)]
    else:
        local = x.new_zeros(n, x.shape[1])
    if not _distributed():
        return local if x.shape[0] else None
    has_rows = [torch.zeros(1, device=x.device) for _ in range(dist.get_world_size())]
    dist.all_gather(has_rows, x.new_tensor([float(x.shape[0] > 0)]))
    sources = [rank for rank, flag in enumerate(has_rows) if flag.item()]
    if not sources:
        return None
    dist.broadcast(local, src=sources[0])
    return local


class Codebook(nn.Module):
    """`size` centroids of dimension `dim`, derived from the checkpoint's EMA buffers."""

    _initialized: Tensor  # [1] 1.0 once seeded (by training, or in a released file)
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

    @torch.no_grad()
    def learn(self, x: Tensor, idx: Tensor, opts: VQTraining) -> None:
        """One training step of the EMA statistics from vectors x [N, dim] assigned to idx [N]
        (N may be 0, and may differ between processes: statistics are summed over them),
        then codes used less than `dead_usage_ratio` re-seeded from x."""
        size = self.cluster_usage.shape[0]
        counts = _all_reduce_sum(torch.bincount(idx, minlength=size).to(x.dtype))
        sums = _all_reduce_sum(torch.zeros_like(self.embedding_sum).index_add_(0, idx, x))
        self.cluster_usage.mul_(opts.ema_decay).add_(counts, alpha=1 - opts.ema_decay)
        self.embedding_sum.mul_(opts.ema_decay).add_(sums, alpha=1 - opts.ema_decay)
        uniform = float(self.cluster_usage.sum()) / size
        dead = self.cluster_usage < opts.dead_usage_ratio * uniform
        n_dead = int(dead.sum())
        samples = _shared_samples(x, n_dead) if n_dead else None
        if samples is not None:
            usage = opts.replaced_usage_ratio * uniform
            self.embedding_sum[dead] = samples * usage
            self.cluster_usage[dead] = usage
        self.refresh()

    @torch.no_grad()
    def seed(self, x: Tensor) -> None:
        """Centroids drawn from the vectors x [N, dim] (of every process), each with the
        uniform usage; nothing when no process has vectors."""
        size = self.cluster_usage.shape[0]
        samples = _shared_samples(x, size)
        if samples is None:
            return
        usage = float(_all_reduce_sum(x.new_tensor(float(x.shape[0])))) / size
        self.embedding_sum.copy_(samples * usage)
        self.cluster_usage.fill_(usage)
        self._initialized.fill_(1.0)
        self.refresh()

    @property
    def initialized(self) -> bool:
        return bool(self._initialized.item())


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

    def forward(self, x: Tensor, used: Tensor, opts: VQTraining) -> tuple[Tensor, Tensor, Tensor, int]:
        """x: [B, D_latent, T], used: [B, n] bool (codebook i quantizes item b) -> quantized
        latent [B, D_latent, T] (straight-through; zero for items with no codebook used),
        codes [B, n, T], the summed squared distance of the used residuals to their centroids
        [] (the commitment term, with gradient to x) and the number of values it sums."""
        B, _, T = x.shape
        z = self.input_proj(x).transpose(1, 2).reshape(B * T, -1)  # [B * T, dim]
        used_rows = used.repeat_interleave(T, dim=0)  # [B * T, n]
        residual, quantized = z.detach(), torch.zeros_like(z)
        codes, distance, count = [], z.new_zeros(()), 0
        for i, codebook in enumerate(self.codebooks[: used.shape[1]]):
            rows = used_rows[:, i]
            if self.training and not codebook.initialized:
                codebook.seed(residual[rows])
            idx = codebook.encode(residual)
            q = codebook.centroids[idx] * rows[:, None]
            # The commitment term pulls the input (with its gradient) towards the centroids.
            distance = distance + ((z - quantized - q).pow(2) * rows[:, None]).sum()
            count += int(rows.sum()) * z.shape[1]
            if self.training:
                codebook.learn(residual[rows], idx[rows], opts)
            quantized, residual = quantized + q, residual - q
            codes.append(idx)
        any_used = used.any(dim=1).repeat_interleave(T)[:, None]
        out = (z + (quantized - z).detach()) * any_used  # [B * T, dim]
        out = self.output_proj(out.view(B, T, -1).transpose(1, 2))
        return out, torch.stack(codes, dim=1).view(B, T, -1).transpose(1, 2), distance, count

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

    def forward(self, x: Tensor, n: int, opts: VQTraining | None = None) -> Quantized:
        """x: [B, D_latent, T] -> quantized with the first n codebooks. In training mode, with
        `opts`: EMA codebook updates, quantizer dropout and the quantization rate."""
        if x.dim() != 3:
            raise ValueError(f"latent must have shape [B, D, T], got {list(x.shape)}")
        if not 1 <= n <= len(self.rvq_first.codebooks) + len(self.rvq_rest.codebooks):
            raise ValueError(f"n must be in [1, {self.semantic + len(self.rvq_rest.codebooks)}], got {n}")
        opts = opts or VQTraining()
        B = x.shape[0]
        count = torch.full((B,), n, device=x.device)
        if self.training and opts.quantizer_dropout:
            count = torch.randint(1, n + 1, (B,), device=x.device)
        used = torch.arange(n, device=x.device)[None, :] < count[:, None]  # [B, n]
        semantic, codes, distance, values = self.rvq_first(x, used[:, : self.semantic], opts)
        latent = semantic
        if n > self.semantic:
            rest, codes_rest, d_rest, v_rest = self.rvq_rest(x, used[:, self.semantic :], opts)
            latent, codes = latent + rest, torch.cat([codes, codes_rest], dim=1)
            distance, values = distance + d_rest, values + v_rest
        if self.training and opts.quantize_rate < 1.0:
            quantize = torch.rand(B, device=x.device) < opts.quantize_rate
            latent = torch.where(quantize[:, None, None], latent, x)
        return Quantized(latent, codes, distance / max(values, 1), semantic)
