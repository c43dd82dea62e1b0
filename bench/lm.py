"""LM step speed: ms per 80 ms step (temporal transformer, depformer, sampling), JSON lines.

    python bench/lm.py                                        # lm-small on 2 CPU threads
    python bench/lm.py --reference /tmp/moshi-peer-venv/bin/python   # + Kyutai's, and the ratio
    python bench/lm.py --reference /tmp/moshi-peer-venv/bin/python --full-ring --repeat 3
    python bench/lm.py --preset 7b --device cuda --dtype bfloat16 --batch 1 8   # on a GPU

Weights are random (speed does not depend on them). `lm-small` is the 105M-parameter
configuration of shared/peer/bench_reference.py, so that both run the same model, timed
the same way: 30 steps after 5 warm-up steps. Until its KV ring is full (500 steps, 40 s)
our attention reads only the slots used so far; `--full-ring` also times both after 505
warm-up steps, as any conversation past 40 s runs. `--repeat N` keeps the best of N runs
of each side (ours and the reference alternate), against neighbours' noise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from floor import BANDWIDTH_BYTES, Floor, WeightReads

from moshi import quantize
from moshi.lm import LMConfig, LMModel
from moshi.lm.generator import Generator

PRESETS = {
    "lm-small": dict(
        dim=512,
        num_heads=8,
        num_layers=8,
        depformer_dim=256,
        depformer_num_heads=4,
        depformer_num_layers=2,
        depformer_dim_feedforward=int(4.125 * 256),
        context=500,
    ),
    "7b": {},
}
REPO = Path(__file__).resolve().parent.parent
REFERENCE_SCRIPT = REPO.parent / "shared" / "peer" / "bench_reference.py"
REFERENCE_RING_SCRIPT = REPO / "bench" / "reference_lm.py"
WARMUP = 5  # as shared/peer/bench_reference.py
SMOKE_BANDWIDTH_BYTES = 64 << 20


def random_model(preset: str, device: str, dtype: torch.dtype) -> LMModel:
    cfg = LMConfig(**PRESETS[preset])
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build directly in dtype: no float32 copy of a 7B model
    try:
        with torch.device(device):
            model = LMModel(cfg)
    finally:
        torch.set_default_dtype(default)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    return model.eval()


def time_steps(gen: Generator, batch: int, steps: int, warmup: int) -> float:
    """Mean ms per step, user codes random, sampling on."""
    codes = torch.randint(
        0, gen.model.config.card, (batch, gen.model.config.num_user_streams, 1), device=gen.model.device
    )
    sync = torch.cuda.synchronize if gen.model.device.type == "cuda" else (lambda: None)
    with gen.streaming(batch):
        for _ in range(warmup):
            gen.step(codes)
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            gen.step(codes)
        sync()
    return 1000 * (time.perf_counter() - t0) / steps


def step_weight_bytes(gen: Generator) -> int:
    """Bytes of weights one step at batch 1 reads (bench/floor.py)."""
    codes = torch.zeros(1, gen.model.config.num_user_streams, 1, dtype=torch.long, device=gen.model.device)
    with gen.streaming(1):
        gen.step(codes)
        with WeightReads(gen.model) as reads:
            gen.step(codes)
    return reads.nbytes


def reference_line(python: str, command: list[str], threads: int) -> dict:
    """Run a reference timing script with the reference's python; its last JSON line."""
    out = subprocess.run(
        [python, *command],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "THREADS": str(threads)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def emit(**line: object) -> None:
    print(json.dumps(line), flush=True)


def ratio_line(bench: str, reference_ms: float, ours_ms: float) -> None:
    emit(
        bench=bench,
        reference_ms=reference_ms,
        ours_ms=round(ours_ms, 2),
        speedup=round(reference_ms / ours_ms, 2),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="lm-small")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    p.add_argument("--batch", type=int, nargs="+", default=[1])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--graphs", choices=["on", "off", "both"], default="both", help="CUDA graphs of the step (CUDA only)"
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="keep the best of this many runs (ours and the reference)"
    )
    p.add_argument("--full-ring", action="store_true", help="also time both with the KV ring full")
    p.add_argument("--reference", metavar="PYTHON", help="also time Kyutai's reference with this python")
    p.add_argument("--reference-script", default=str(REFERENCE_SCRIPT))
    p.add_argument("--reference-ring-script", default=str(REFERENCE_RING_SCRIPT))
    p.add_argument("--smoke", action="store_true", help="a few steps only (CI)")
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    steps, warmup = (3, 2) if args.smoke else (args.steps, WARMUP)
    dtype = getattr(torch, args.dtype)
    model = random_model(args.preset, args.device, dtype)
    params = sum(p.numel() for p in model.parameters())
    reference = args.reference if args.preset == "lm-small" else None
    on_cpu = args.device == "cpu"
    ring_warmup = model.config.context + WARMUP
    floor = Floor.measure(SMOKE_BANDWIDTH_BYTES if args.smoke else BANDWIDTH_BYTES) if on_cpu else None

    def floor_fields(ms: float, gen: Generator, batch: int) -> dict:
        """The memory floor beside a CPU line at batch 1 (bench/floor.py)."""
        return floor.line(ms, step_weight_bytes(gen)) if floor and batch == 1 else {}

    def reference_run() -> dict:
        assert reference is not None
        return reference_line(reference, [args.reference_script, "lm-small"], args.threads)

    def generator(graphs: bool = False) -> Generator:
        return Generator(model, temp=0.8, temp_text=0.7, top_k=250, top_k_text=25, seed=0, cuda_graphs=graphs)

    graph_modes = [False] if on_cpu else {"on": [True], "off": [False], "both": [False, True]}[args.graphs]
    ours = None
    refs: list[dict] = []  # the reference's runs
    for batch in args.batch:
        for graphs in graph_modes:
            gen = generator(graphs)
            runs = [time_steps(gen, batch, steps, warmup)]
            headline = batch == 1 and not graphs
            for _ in range(args.repeat - 1 if headline else 0):  # ours and the reference alternate
                if reference:
                    refs.append(reference_run())
                runs.append(time_steps(gen, batch, steps, warmup))
            ms = min(runs)
            ours = ms if headline else ours
            emit(
                bench=args.preset,
                impl="ours",
                device=args.device,
                dtype=args.dtype,
                batch=batch,
                cuda_graphs=graphs,
                step_ms=round(ms, 2),
                runs=len(runs),
                params_m=round(params / 1e6, 1),
                threads=args.threads,
                **floor_fields(ms, gen, batch),
            )
    full_ring = None
    if args.full_ring:
        full_ring = min(time_steps(generator(), 1, steps, ring_warmup) for _ in range(args.repeat))
        emit(bench=f"{args.preset}-full-ring", impl="ours", warmup=ring_warmup, step_ms=round(full_ring, 2))
    ours_int8 = None
    if on_cpu:  # the opt-in, approximate int8 weights (moshi/kernels/int8.py)
        quantize.apply_lm(model)
        for batch in args.batch:
            gen = generator()
            ms = time_steps(gen, batch, steps, warmup)
            ours_int8 = ms if batch == 1 else ours_int8
            emit(
                bench=f"{args.preset}-int8",
                impl="ours",
                device="cpu",
                batch=batch,
                step_ms=round(ms, 2),
                threads=args.threads,
                **floor_fields(ms, gen, batch),
            )
    if reference:
        refs.append(reference_run())
        best = min(refs, key=lambda r: r["step_ms"])
        emit(**best, runs=len(refs))
        for name, ms in (("lm-small-ratio", ours), ("lm-small-int8-ratio", ours_int8)):
            if ms is not None:
                ratio_line(name, best["step_ms"], ms)
        if full_ring is not None:
            command = [
                args.reference_ring_script,
                *("--warmup", str(ring_warmup), "--steps", str(steps)),
                *("--reference-script", args.reference_script),
            ]
            ring = min(
                (reference_line(reference, command, args.threads) for _ in range(args.repeat)),
                key=lambda r: r["step_ms"],
            )
            emit(**{**ring, "bench": "lm-small-full-ring"})
            ratio_line("lm-small-full-ring-ratio", ring["step_ms"], full_ring)


if __name__ == "__main__":
    sys.exit(main())
