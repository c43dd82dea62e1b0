"""LM step speed: ms per 80 ms step (temporal transformer, depformer, sampling), JSON lines.

    python bench/lm.py                                        # lm-small on 2 CPU threads
    python bench/lm.py --reference /tmp/moshi-peer-venv/bin/python   # + Kyutai's, and the ratio
    python bench/lm.py --preset 7b --device cuda --dtype bfloat16 --batch 1 8   # on a GPU

Weights are random (speed does not depend on them). `lm-small` is the 105M-parameter
configuration of shared/peer/bench_reference.py, so that both run the same model.
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

from moshi.kernels import int8
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
    p.add_argument("--reference", metavar="PYTHON", help="also time Kyutai's reference with this python")
    p.add_argument("--reference-script", default=str(REFERENCE_SCRIPT))
    p.add_argument("--smoke", action="store_true", help="a few steps only (CI)")
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    steps, warmup = (3, 2) if args.smoke else (args.steps, 5)
    dtype = getattr(torch, args.dtype)
    model = random_model(args.preset, args.device, dtype)
    params = sum(p.numel() for p in model.parameters())
    graph_modes = (
        [False]
        if args.device == "cpu"
        else {"on": [True], "off": [False], "both": [False, True]}[args.graphs]
    )
    ours = None
    for batch in args.batch:
        for graphs in graph_modes:
            gen = Generator(
                model, temp=0.8, temp_text=0.7, top_k=250, top_k_text=25, seed=0, cuda_graphs=graphs
            )
            ms = time_steps(gen, batch, steps, warmup)
            line = dict(
                bench=args.preset,
                impl="ours",
                device=args.device,
                dtype=args.dtype,
                batch=batch,
                cuda_graphs=graphs,
                step_ms=round(ms, 2),
                params_m=round(params / 1e6, 1),
                threads=args.threads,
            )
            if batch == 1 and not graphs:
                ours = ms
            print(json.dumps(line), flush=True)
    ours_int8 = None
    if args.device == "cpu":  # the opt-in, approximate int8 weights (moshi/kernels/int8.py)
        int8.apply_lm(model)
        for batch in args.batch:
            gen = Generator(model, temp=0.8, temp_text=0.7, top_k=250, top_k_text=25, seed=0)
            ms = time_steps(gen, batch, steps, warmup)
            if batch == 1:
                ours_int8 = ms
            print(
                json.dumps(
                    dict(
                        bench=f"{args.preset}-int8",
                        impl="ours",
                        device="cpu",
                        batch=batch,
                        step_ms=round(ms, 2),
                        threads=args.threads,
                    )
                ),
                flush=True,
            )
    if args.reference and args.preset == "lm-small":
        out = subprocess.run(
            [args.reference, args.reference_script, "lm-small"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "THREADS": str(args.threads)},
        )
        for text in out.stdout.splitlines():
            ref = json.loads(text)
            print(json.dumps(ref), flush=True)
            for name, ms in (("lm-small-ratio", ours), ("lm-small-int8-ratio", ours_int8)):
                if ms is not None:
                    ratio = dict(
                        bench=name,
                        reference_ms=ref["step_ms"],
                        ours_ms=round(ms, 2),
                        speedup=round(ref["step_ms"] / ms, 2),
                    )
                    print(json.dumps(ratio), flush=True)


if __name__ == "__main__":
    sys.exit(main())
