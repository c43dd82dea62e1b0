"""How fast each exact formulation of a few-row product streams real weights, JSON lines.

    .venv/bin/python bench/linear.py                   # stt-1b-en_fr, lm-small, Mimi; 2 threads
    .venv/bin/python bench/linear.py --smoke           # one small shape (CI)

One line per weight shape, dtype and row count M: the GB/s of each formulation of
moshi/nn/small_rows.py (weight bytes / best time per call), and the one its chooser picks.
Weights are read from memory, not the cache (copies cycled, as the chooser times them), as
in a streaming step, where each weight is read once per step. Shapes (as our modules store
them; a SiLU-gated FFN's `linear_in` holds both halves, [2 * hidden, dim]):
stt-1b-en_fr (d_model 2048, 16 layers, feed-forward 8192 -> gated hidden 5376), lm-small
(bench/lm.py) and Mimi's transformers (d_model 512, feed-forward 2048).
"""

from __future__ import annotations

import argparse
import json

import torch

from moshi.nn import small_rows

SHAPES = {  # name: [out, in]
    "stt-1b.in_proj": (3 * 2048, 2048),
    "stt-1b.out_proj": (2048, 2048),
    "stt-1b.ffn_in": (2 * 5376, 2048),
    "stt-1b.ffn_out": (2048, 5376),
    "lm-small.in_proj": (3 * 512, 512),
    "lm-small.ffn_in": (2 * 1408, 512),
    "lm-small.ffn_out": (512, 1408),
    "lm-small.depformer.in_proj": (3 * 256, 256),
    "lm-small.depformer.ffn_in": (2 * 704, 256),
    "mimi.in_proj": (3 * 512, 512),
    "mimi.linear1": (2048, 512),
    "mimi.linear2": (512, 2048),
}


def streaming_gbs(shape: tuple[int, int], dtype: torch.dtype, rows: int, trials: int) -> tuple[dict, str]:
    """GB/s of each form on a weight read from memory (small_rows.time_forms), and the
    form the chooser takes from these timings."""
    w, x = torch.randn(shape).to(dtype), torch.randn(rows, shape[1]).to(dtype)
    with torch.inference_mode():
        best = small_rows.time_forms(x, w, trials)
    gbs = {name: round(w.numel() * dtype.itemsize / t / 1e9, 1) for name, t in best.items()}
    return gbs, small_rows.pick(best)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rows", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="one small shape, one trial (CI)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    shapes = {"mimi.in_proj": SHAPES["mimi.in_proj"]} if args.smoke else SHAPES
    for name, shape in shapes.items():
        for dtype_name in args.dtype:
            dtype = getattr(torch, dtype_name)
            for rows in args.rows:
                gbs, chosen = streaming_gbs(shape, dtype, rows, 1 if args.smoke else args.trials)
                line = dict(bench="linear", weight=name, shape=list(shape), dtype=dtype_name, rows=rows)
                print(json.dumps(line | dict(gbs=gbs, chosen=chosen, threads=args.threads)), flush=True)


if __name__ == "__main__":
    main()
