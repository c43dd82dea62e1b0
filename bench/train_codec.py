"""Mimi's training speed on this machine: codec frames (12.5 per second of audio) trained per
second, for a preset, with and without the discriminator.

    .venv/bin/python bench/train_codec.py                      # mimi-small, 2 threads
    .venv/bin/python bench/train_codec.py --preset mimi --batch 2
    .venv/bin/python bench/train_codec.py --smoke              # a tiny model, 2 steps (CI)

Prints one JSON line per measurement: `codec-train` with the preset, batch, seconds per
item, whether the discriminator ran, step_s (the median step) and frames_per_s
(batch * seconds * frame_rate / step_s), rtf_train = step_s / (batch * seconds).
`codec_train_throughput` is the function other benchmarks call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from moshi.codec.config import MIMI_PRESETS
from moshi.train.codec.config import CodecLossConfig, CodecModelConfig, CodecTrainConfig
from moshi.train.codec.discriminator import DiscriminatorConfig
from moshi.train.codec.train import build_trainer, crop_samples

SMOKE_DISC = DiscriminatorConfig(filters=4, max_filters=8, n_ffts=(256, 64))
SMOKE_MIMI = dict(
    dimension=32,
    n_filters=4,
    num_heads=2,
    num_layers=1,
    dim_feedforward=64,
    codebook_dim=16,
    codebook_size=32,
)


def codec_train_throughput(
    preset: str = "mimi-small",
    batch: int = 8,
    seconds: float = 1.0,
    steps: int = 5,
    discriminator: bool = True,
    mimi: dict | None = None,
    device: str = "cpu",
    disc: DiscriminatorConfig | None = None,
) -> dict:
    """Time `steps` training steps (after one warm-up) of a fresh Mimi on random audio."""
    loss = CodecLossConfig() if discriminator else CodecLossConfig(adversarial=0, feature_matching=0)
    cfg = CodecTrainConfig(
        run_dir="unused",
        model=CodecModelConfig(preset=preset, mimi=mimi or {}),
        loss=loss,
        discriminator=disc or DiscriminatorConfig(),
        batch_size=batch,
        duration_sec=seconds,
        max_steps=steps + 1,
        device=device,
    )
    trainer = build_trainer(cfg, torch.device(device))
    mimi_model = trainer.generator.mimi
    samples = crop_samples(seconds, mimi_model.frame_rate, mimi_model.frame_size)
    pcm = 0.1 * torch.randn(batch, 1, samples, device=device)
    seconds = samples / mimi_model.sample_rate
    times = []
    for step in range(steps + 1):
        t0 = time.perf_counter()
        trainer.step(pcm, step)
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    step_s = statistics.median(times[1:])
    return dict(
        bench="codec-train",
        preset=preset,
        params_m=round(sum(p.numel() for p in mimi_model.parameters()) / 1e6, 2),
        batch=batch,
        seconds=seconds,
        discriminator=discriminator,
        step_s=round(step_s, 4),
        frames_per_s=round(batch * seconds * mimi_model.frame_rate / step_s, 2),
        rtf_train=round(step_s / (batch * seconds), 4),
        threads=torch.get_num_threads(),
        device=device,
    )


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--preset", default="mimi-small", choices=sorted(MIMI_PRESETS))
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0, help="audio per batch item")
    parser.add_argument("--steps", type=int, default=5, help="steps timed (after one warm-up)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--smoke", action="store_true", help="a tiny model, batch 2, 0.16 s, 2 steps (CI)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    kw = dict(
        preset=args.preset, batch=args.batch, seconds=args.seconds, steps=args.steps, device=args.device
    )
    if args.smoke:
        kw.update(batch=2, seconds=0.16, steps=2, mimi=SMOKE_MIMI, disc=SMOKE_DISC)
    for discriminator in (False, True):
        print(json.dumps(codec_train_throughput(discriminator=discriminator, **kw)), flush=True)


if __name__ == "__main__":
    main()
