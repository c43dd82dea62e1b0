"""Where a streaming Mimi frame's time goes: one JSON line per module, with its floor.

    .venv/bin/python bench/mimi_profile.py                # 2 threads, 20 frames
    .venv/bin/python bench/mimi_profile.py --smoke        # the tiny Mimi, 2 frames (CI)

Each frame is encoded then decoded, one call each (batch 1, 8 codebooks, as bench/codec.py).
Per module (SEANet's layers, the transformers, the resampling convs; `other` is the rest:
the quantizer and the glue between modules): ms per frame, share of the frame, the weight
bytes it reads and its float operations, and its floor, the larger of the memory floor
(bytes / measured bandwidth) and the compute floor (flops / a measured float32 matrix
product's rate). SEANet's convs at 24 kHz do a hundred or more flops per weight byte: their
floor is compute; the transformers (two rows per call at 25 Hz) are memory-bound.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field

import codec as codec_bench
import torch
from floor import BANDWIDTH_BYTES, Floor, WeightReads, cpu_model
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from moshi.codec import Mimi, MimiConfig

MATMUL_SIZE = 1024  # square float32 product timed for the compute rate
REPEATS = 5


def measure_flops(n: int = MATMUL_SIZE, repeats: int = REPEATS) -> float:
    """Float32 operations per second of an n x n x n matrix product (best of `repeats`)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


@dataclass
class Tally:
    seconds: float = 0.0
    flops: int = 0
    nbytes: int = 0
    started: list[float] = field(default_factory=list)


def groups(mimi: Mimi) -> dict[str, nn.Module]:
    """The modules timed, in the order a frame runs them."""
    out = {
        f"encoder.{i}.{type(m).__name__}": m for i, m in enumerate(mimi.encoder.model) if list(m.parameters())
    }
    out |= {"encoder_transformer": mimi.encoder_transformer, "downsample": mimi.downsample}
    out |= {"upsample": mimi.upsample, "decoder_transformer": mimi.decoder_transformer}
    out |= {
        f"decoder.{i}.{type(m).__name__}": m for i, m in enumerate(mimi.decoder.model) if list(m.parameters())
    }
    return out


def profile(mimi: Mimi, frames: int, warmup: int = 3) -> tuple[dict[str, Tally], float]:
    """Per-module time over `frames` streamed frames, and per-frame flops and weight bytes
    (counted on one more frame); and the whole frame's seconds."""
    tallies = {name: Tally() for name in groups(mimi)}

    def pre(name: str):  # type: ignore[no-untyped-def]
        def hook(module: nn.Module, args: object) -> None:
            tallies[name].started.append(time.perf_counter())

        return hook

    def post(name: str):  # type: ignore[no-untyped-def]
        def hook(module: nn.Module, args: object, out: object) -> None:
            t = tallies[name]
            t.seconds += time.perf_counter() - t.started.pop()

        return hook

    handles = []
    for name, module in groups(mimi).items():
        handles += [module.register_forward_pre_hook(pre(name)), module.register_forward_hook(post(name))]
    pcm = 0.1 * torch.randn(1, 1, mimi.frame_size * (warmup + frames))
    chunks = pcm.split(mimi.frame_size, dim=-1)
    with torch.no_grad(), mimi.streaming(1):
        for chunk in chunks[:warmup]:
            mimi.decode(mimi.encode(chunk))
        for t in tallies.values():
            t.seconds = 0.0
        t0 = time.perf_counter()
        for chunk in chunks[warmup:]:
            mimi.decode(mimi.encode(chunk))
        total = time.perf_counter() - t0
        for h in handles:
            h.remove()
        for name, module in groups(mimi).items():  # flops and bytes, module by module
            tally = tallies[name]
            handles += [module.register_forward_pre_hook(_enter(tally, module))]
            handles += [module.register_forward_hook(_exit(tally))]
        mimi.decode(mimi.encode(chunks[0]))
        for h in handles:
            h.remove()
    return tallies, total


_OPEN: dict[int, tuple[FlopCounterMode, WeightReads]] = {}


def _enter(tally: Tally, module: nn.Module):  # type: ignore[no-untyped-def]
    def hook(m: nn.Module, args: object) -> None:
        modes = (FlopCounterMode(display=False), WeightReads(module))
        for mode in modes:
            mode.__enter__()
        _OPEN[id(tally)] = modes

    return hook


def _exit(tally: Tally):  # type: ignore[no-untyped-def]
    def hook(m: nn.Module, args: object, out: object) -> None:
        flops, reads = _OPEN.pop(id(tally))
        reads.__exit__(None, None, None)
        flops.__exit__(None, None, None)
        tally.flops, tally.nbytes = flops.get_total_flops(), reads.nbytes

    return hook


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--smoke", action="store_true", help="the tiny Mimi, 2 frames (CI)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    floor = Floor.measure(64 << 20 if args.smoke else BANDWIDTH_BYTES)
    rate = measure_flops(128 if args.smoke else MATMUL_SIZE)
    if args.smoke:
        import tts as tts_bench

        mimi = Mimi(MimiConfig.from_kyutai(tts_bench.MIMI_TINY)).eval()
        tts_bench.randomize(mimi)
    else:
        mimi = codec_bench.random_mimi(0)
    tallies, total = profile(mimi, 2 if args.smoke else args.frames)
    frames = 2 if args.smoke else args.frames
    machine = dict(machine=cpu_model(), threads=args.threads)
    rest = total - sum(t.seconds for t in tallies.values())
    rows = [(name, t.seconds, t.nbytes, t.flops) for name, t in tallies.items()] + [("other", rest, 0, 0)]
    floors = 0.0
    for name, seconds, nbytes, flops in rows:
        ms = 1000 * seconds / frames
        memory_ms, compute_ms = floor.ms(nbytes), 1000 * flops / rate
        floors += max(memory_ms, compute_ms)
        line = dict(bench="mimi-profile", module=name, ms=round(ms, 3), share=round(seconds / total, 3))
        line |= dict(weight_mb=round(nbytes / 1e6, 2), mflop=round(flops / 1e6, 1))
        line |= dict(memory_floor_ms=round(memory_ms, 3), compute_floor_ms=round(compute_ms, 3))
        print(json.dumps(line | machine), flush=True)
    summary = dict(bench="mimi-profile-total", frame_ms=round(1000 * total / frames, 2))
    summary |= dict(floor_ms=round(floors, 2), bandwidth_gbs=round(floor.bandwidth / 1e9, 1))
    summary |= dict(matmul_gflops=round(rate / 1e9, 1))
    print(json.dumps(summary | machine), flush=True)


if __name__ == "__main__":
    main()
