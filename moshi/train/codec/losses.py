"""The codec's losses: multi-scale log-mel L1 and waveform L1 (reconstruction), hinge
adversarial losses, relative feature matching, and the semantic distillation cosine."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MEL_FLOOR = 1e-3  # log(max(mel, floor)): lower floors make the loss chase silence
MEL_BANDS = 64
MEL_WINDOWS = tuple(2**i for i in range(5, 12))  # 32 to 2048 samples
FEATURE_EPS = 1e-8


def mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> Tensor:
    """Triangular filters on the HTK mel scale: [n_mels, n_fft // 2 + 1]."""

    def mel(f: Tensor) -> Tensor:
        return 2595.0 * torch.log10(1.0 + f / 700.0)

    def hz(m: Tensor) -> Tensor:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = hz(
        torch.linspace(0.0, float(mel(torch.tensor(sample_rate / 2.0))), n_mels + 2, dtype=torch.float64)
    )
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs - lower) / (center - lower)
    down = (upper - freqs) / (upper - center)
    return torch.clamp(torch.minimum(up, down), min=0.0).float()


class LogMel(nn.Module):
    """pcm [B, 1, T] -> log mel magnitudes [B, n_mels, frames] (window n_fft, hop n_fft / 4)."""

    window: Tensor  # [n_fft]
    filters: Tensor  # [n_mels, n_fft // 2 + 1]

    def __init__(self, sample_rate: int, n_fft: int, n_mels: int = MEL_BANDS, floor: float = MEL_FLOOR):
        super().__init__()
        self.n_fft, self.floor = n_fft, floor
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer(
            "filters", mel_filters(sample_rate, n_fft, min(n_mels, n_fft // 4)), persistent=False
        )

    def forward(self, pcm: Tensor) -> Tensor:
        spec = torch.stft(pcm[:, 0], self.n_fft, self.n_fft // 4, window=self.window, return_complex=True)
        return torch.log(torch.clamp(self.filters @ spec.abs(), min=self.floor))


class MultiScaleMelLoss(nn.Module):
    """Mean over windows 2^5 .. 2^11 of the L1 distance of log-mel spectrograms; x, y [B, 1, T]."""

    def __init__(self, sample_rate: int, n_ffts: tuple[int, ...] = MEL_WINDOWS):
        super().__init__()
        self.mels = nn.ModuleList(LogMel(sample_rate, n) for n in n_ffts)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.stack([F.l1_loss(mel(x), mel(y)) for mel in self.mels]).mean()


def discriminator_hinge(real: list[Tensor], fake: list[Tensor]) -> Tensor:
    """Hinge loss of the discriminator, mean over resolutions: relu(1 - D(x)) + relu(1 + D(G(z)))."""
    terms = [F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake, strict=True)]
    return torch.stack(terms).mean()


def generator_hinge(fake: list[Tensor]) -> Tensor:
    """Hinge loss of the generator, mean over resolutions: relu(1 - D(G(z)))."""
    return torch.stack([F.relu(1 - f).mean() for f in fake]).mean()


def feature_matching(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """Mean over resolutions and layers of |fake - real| / mean |real| (EnCodec's relative L1)."""
    terms = [
        F.l1_loss(f, r.detach()) / (r.detach().abs().mean() + FEATURE_EPS)
        for rs, fs in zip(real, fake, strict=True)
        for r, f in zip(rs, fs, strict=True)
    ]
    return torch.stack(terms).mean()


def cosine_distance(x: Tensor, target: Tensor) -> Tensor:
    """1 - cosine similarity along the channels, averaged over batch and time; x [B, D, F]
    and target [B, D, F'] (the target linearly resampled in time to F)."""
    if target.shape[-1] != x.shape[-1]:
        target = F.interpolate(target, size=x.shape[-1], mode="linear", align_corners=False)
    return (1 - F.cosine_similarity(x, target.detach(), dim=1)).mean()


# STOI's analysis (Taal et al. 2011) at 24 kHz: ~25 ms windows at half overlap, 15 third-octave
# bands from 150 Hz, envelopes compared over 30-frame (~400 ms) segments, frames more than
# 40 dB below the crop's loudest left out.
ENVELOPE_WINDOW, ENVELOPE_FFT = 640, 1024
ENVELOPE_BANDS, ENVELOPE_LOWEST_HZ = 15, 150.0
ENVELOPE_SEGMENT = 30
ENVELOPE_RANGE_DB = 40.0


def third_octave_bands(sample_rate: int, n_fft: int, bands: int, lowest: float) -> Tensor:
    """[bands, n_fft // 2 + 1]: 1 where an FFT bin lies in a third-octave band, else 0."""
    freqs = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    centers = lowest * 2.0 ** (torch.arange(bands, dtype=torch.float64) / 3)
    low, high = centers * 2 ** (-1 / 6), centers * 2 ** (1 / 6)
    return ((freqs >= low[:, None]) & (freqs < high[:, None])).float()


class EnvelopeLoss(nn.Module):
    """1 - the correlation of x's band envelopes with y's over short segments, the quantity
    STOI averages (without its clipping), weighted by how much of each segment is speech;
    x, y [B, 1, T] (y the original). A reconstruction loss that, unlike a log-mel L1, is
    blind to level and spends nothing on silence."""

    window: Tensor  # [ENVELOPE_WINDOW]
    bands: Tensor  # [ENVELOPE_BANDS, ENVELOPE_FFT // 2 + 1]

    def __init__(self, sample_rate: int):
        super().__init__()
        self.register_buffer("window", torch.hann_window(ENVELOPE_WINDOW), persistent=False)
        bands = third_octave_bands(sample_rate, ENVELOPE_FFT, ENVELOPE_BANDS, ENVELOPE_LOWEST_HZ)
        self.register_buffer("bands", bands, persistent=False)

    def envelopes(self, pcm: Tensor) -> tuple[Tensor, Tensor]:
        """pcm [B, 1, T] -> (band magnitudes [B, bands, frames], frame energy in dB [B, frames])."""
        spec = torch.stft(
            pcm[:, 0], ENVELOPE_FFT, ENVELOPE_WINDOW // 2, ENVELOPE_WINDOW, self.window, return_complex=True
        )
        power = spec.real**2 + spec.imag**2  # [B, bins, frames]
        energy = 10 * torch.log10(power.sum(1) + FEATURE_EPS)
        return torch.sqrt(self.bands @ power + FEATURE_EPS), energy

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        ex, _ = self.envelopes(x)
        ey, energy = self.envelopes(y)
        speech = (energy > energy.amax(-1, keepdim=True) - ENVELOPE_RANGE_DB).float()  # [B, frames]
        size = min(ENVELOPE_SEGMENT, speech.shape[-1])  # a short crop is one segment
        weight = speech.unfold(-1, size, 1).mean(-1)  # [B, segments]

        def centered(e: Tensor) -> Tensor:  # [B, bands, segments, size], unit norm
            s = e.unfold(-1, size, 1)
            s = s - s.mean(-1, keepdim=True)
            return s / (s.norm(dim=-1, keepdim=True) + FEATURE_EPS)

        correlation = (centered(ex) * centered(ey.detach())).sum(-1).mean(1)  # [B, segments]
        return 1 - (correlation * weight).sum() / (weight.sum() + FEATURE_EPS)
