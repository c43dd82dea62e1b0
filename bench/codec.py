"""Mimi's speed on this machine: streaming (batch 1, one 80 ms frame per call) and offline.

    .venv/bin/python bench/codec.py                       # ours, 2 threads
    .venv/bin/python bench/codec.py --reference /tmp/moshi-peer-venv/bin/python
    .venv/bin/python bench/codec.py --smoke               # a few frames, a 1 s clip (CI)
    .venv/bin/python bench/codec.py --repeat 3            # best of 3 runs, on a busy machine

Prints one JSON line per measurement: `mimi-stream` (encode_ms and decode_ms per frame,
rtf = (encode + decode) / frame duration) and `mimi-offline` (encode_s and decode_s for a
clip, rtf = total / clip duration), then the same for the opt-in, approximate int8 weights
(`mimi-stream-int8`, `mimi-offline-int8`, see moshi/kernels/int8.py). Streaming lines carry
the memory floor of a frame (bench/floor.py: weight bytes read / measured bandwidth). With `--reference`,
Kyutai's implementation is timed the same way in its own venv (`bench_reference.py`), its
lines are passed through, and `*-ratio` lines give its times divided by our exact path's
(`speedup` > 1: ours is faster).

The model is the released architecture (MimiConfig()) with random weights: speed does not
depend on their values.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from floor import BANDWIDTH_BYTES, Floor, WeightReads
from torch import nn

from moshi import quantize
from moshi.codec import Mimi, MimiConfig
from moshi.codec.config import MIMI_PRESETS
from moshi.codec.quantizer import Codebook

REPO = Path(__file__).resolve().parent.parent
IMPL = "ours"
SMOKE_BANDWIDTH_BYTES = 64 << 20


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--frames", type=int, default=50, help="streaming frames timed")
    parser.add_argument("--seconds", type=float, default=10.0, help="offline clip duration")
    parser.add_argument(
        "--repeat", type=int, default=1, help="keep the best of this many runs (ours and the reference)"
    )
    parser.add_argument("--smoke", action="store_true", help="3 frames and a 1 s clip, for CI")
    parser.add_argument("--reference", metavar="PYTHON", help="python of a venv with Kyutai's moshi")
    parser.add_argument(
        "--reference-script",
        type=Path,
        default=REPO.parent / "shared" / "peer" / "bench_reference.py",
        help="the reference's benchmark script",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--preset", default="mimi", choices=sorted(MIMI_PRESETS), help="the architecture (MIMI_PRESETS)"
    )
    return parser


def fatal(msg: str) -> None:
    print(f"bench/codec.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def random_mimi(seed: int, preset: str = "mimi") -> Mimi:
    """A preset's architecture (the released one by default), random weights and codebooks,
    in eval mode, producing 8 codebooks."""
    torch.manual_seed(seed)
    mimi = Mimi(MimiConfig.preset(preset))
    for p in mimi.parameters():
        if p.dim() > 1:
            nn.init.kaiming_uniform_(p, a=math.sqrt(5))  # nn.Linear's and nn.Conv1d's default
        else:
            nn.init.uniform_(p, -0.1, 0.1)
    for codebook in mimi.modules():
        if isinstance(codebook, Codebook):
            stats = dict(codebook.named_buffers())
            stats["embedding_sum"].normal_()
            stats["cluster_usage"].uniform_(0.5, 2.0)
            codebook.refresh()
    return mimi.eval()


def bench_stream(mimi: Mimi, frames: int, warmup: int = 3, suffix: str = "") -> dict:
    """Encode `frames` frames one per call, then decode them one per call (ms per frame)."""
    size = mimi.frame_size
    pcm = 0.1 * torch.randn(1, 1, size * frames)
    chunks = pcm.split(size, dim=-1)
    with torch.no_grad(), mimi.streaming(batch_size=1):
        for chunk in chunks[:warmup]:
            mimi.decode(mimi.encode(chunk))
        mimi.reset_streaming()
        t0 = time.perf_counter()
        codes = [mimi.encode(chunk) for chunk in chunks]
        t1 = time.perf_counter()
        for c in codes:
            mimi.decode(c)
        t2 = time.perf_counter()
    encode_ms, decode_ms = 1000 * (t1 - t0) / frames, 1000 * (t2 - t1) / frames
    frame_ms = 1000 * size / mimi.sample_rate
    return dict(
        bench="mimi-stream" + suffix,
        impl=IMPL,
        frames=frames,
        encode_ms=round(encode_ms, 2),
        decode_ms=round(decode_ms, 2),
        rtf=round((encode_ms + decode_ms) / frame_ms, 3),
        threads=torch.get_num_threads(),
    )


def frame_weight_bytes(mimi: Mimi) -> int:
    """Bytes of weights that encoding then decoding one frame reads (bench/floor.py)."""
    with torch.no_grad(), mimi.streaming(batch_size=1), WeightReads(mimi) as reads:
        mimi.decode(mimi.encode(torch.zeros(1, 1, mimi.frame_size)))
    return reads.nbytes


def with_floor(line: dict, floor: Floor, mimi: Mimi) -> dict:
    """A `mimi-stream` line with the memory floor of a frame beside it."""
    return line | floor.line(line["encode_ms"] + line["decode_ms"], frame_weight_bytes(mimi))


def bench_offline(mimi: Mimi, seconds: float, suffix: str = "") -> dict:
    """Encode then decode a `seconds` long clip in one call each."""
    pcm = 0.1 * torch.randn(1, 1, round(seconds * mimi.sample_rate))
    with torch.no_grad():
        mimi.decode(mimi.encode(pcm[..., : mimi.sample_rate]))  # warm up
        t0 = time.perf_counter()
        codes = mimi.encode(pcm)
        t1 = time.perf_counter()
        mimi.decode(codes)
        t2 = time.perf_counter()
    return dict(
        bench="mimi-offline" + suffix,
        impl=IMPL,
        seconds=seconds,
        encode_s=round(t1 - t0, 3),
        decode_s=round(t2 - t1, 3),
        rtf=round((t2 - t0) / seconds, 3),
        threads=torch.get_num_threads(),
    )


def run_reference(python: str, script: Path, bench: str, threads: int) -> dict:
    """One JSON line of `script bench`, run with the reference venv's `python`."""
    if not script.is_file():
        fatal(f"reference script not found: {script}")
    env = dict(os.environ, THREADS=str(threads))
    proc = subprocess.run([python, str(script), bench], capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        fatal(f"the reference failed on {bench} (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def best(runs: list[dict]) -> dict:
    """The run with the lowest real-time factor (noise on a shared machine only adds time)."""
    return min(runs, key=lambda line: line["rtf"])


def ratio(ours: dict, ref: dict, keys: tuple[str, ...]) -> dict:
    """Reference time / our time for each key (per second of audio for offline clips, which
    may differ in length) and for the rtf: > 1 means ours is faster."""
    line = dict(bench=f"{ours['bench']}-ratio", speedup=round(ref["rtf"] / ours["rtf"], 2))
    for key in keys:
        ref_time, our_time = ref[key] / ref.get("seconds", 1), ours[key] / ours.get("seconds", 1)
        line[f"{key}_speedup"] = round(ref_time / our_time, 2)
    return line


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    if args.smoke:
        args.frames, args.seconds = 3, 1.0
    torch.set_num_threads(args.threads)
    runs = range(args.repeat)
    floor = Floor.measure(SMOKE_BANDWIDTH_BYTES if args.smoke else BANDWIDTH_BYTES)
    mimi = random_mimi(args.seed, args.preset)
    ours = {
        "mimi-stream": with_floor(best([bench_stream(mimi, args.frames) for _ in runs]), floor, mimi),
        "mimi-offline": best([bench_offline(mimi, args.seconds) for _ in runs]),
    }
    for line in ours.values():
        print(json.dumps({**line, "preset": args.preset}), flush=True)
    del mimi
    approx = quantize.apply(random_mimi(args.seed, args.preset))
    for line in (
        with_floor(best([bench_stream(approx, args.frames, suffix="-int8") for _ in runs]), floor, approx),
        best([bench_offline(approx, args.seconds, suffix="-int8") for _ in runs]),
    ):
        print(json.dumps({**line, "preset": args.preset}), flush=True)
    del approx
    if args.reference is None or args.preset != "mimi":  # the reference runs the released architecture
        return
    keys = {"mimi-stream": ("encode_ms", "decode_ms"), "mimi-offline": ("encode_s", "decode_s")}
    for bench, line in ours.items():
        ref = best([run_reference(args.reference, args.reference_script, bench, args.threads) for _ in runs])
        print(json.dumps(ref), flush=True)
        print(json.dumps(ratio(line, ref, keys[bench])), flush=True)


if __name__ == "__main__":
    main()
