"""Kyutai's LM step time after a chosen number of warm-up steps: with more than its context
(500 for lm-small), every step attends over a full KV ring, as in any conversation past
its first 40 seconds. Runs in the reference's venv (shared/peer/setup.sh), on the model
of shared/peer/bench_reference.py's lm-small (imported from there):

    /tmp/moshi-peer-venv/bin/python bench/reference_lm.py --warmup 505

bench/lm.py --full-ring calls it. Prints one JSON line.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

REFERENCE_SCRIPT = Path(__file__).resolve().parent.parent.parent / "shared" / "peer" / "bench_reference.py"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--warmup", type=int, default=505)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--reference-script", type=Path, default=REFERENCE_SCRIPT)
    args = p.parse_args()
    sys.path.insert(0, str(args.reference_script.parent))
    import bench_reference as ref  # its config, and Kyutai's `moshi` package

    from moshi.models import LMGen, loaders

    threads = int(os.environ.get("THREADS", "2"))
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    cfg = {**loaders._lm_kwargs, **ref.SMALL_LM}
    lm = loaders.get_moshi_lm(None, lm_kwargs=cfg, device="cpu", dtype=torch.float32).eval()
    gen = LMGen(lm, temp=0.8, temp_text=0.7, top_k=250, top_k_text=25)
    codes = torch.randint(0, 2048, (1, 8, 1))
    with torch.no_grad(), gen.streaming(1):
        for _ in range(args.warmup):
            gen.step(codes)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            gen.step(codes)
        t1 = time.perf_counter()
    ms = 1000 * (t1 - t0) / args.steps
    print(
        json.dumps(
            dict(
                bench="lm-small",
                impl="kyutai-moshi-0.2.13",
                warmup=args.warmup,
                step_ms=round(ms, 2),
                threads=threads,
            )
        )
    )


if __name__ == "__main__":
    os.environ.setdefault("NO_TORCH_COMPILE", "1")
    main()
