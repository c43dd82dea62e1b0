"""LM training throughput: frames (80 ms steps) and tokens per second, JSON lines.

    python bench/train.py                          # lm-small, 2 CPU threads, full and LoRA
    python bench/train.py --seconds 100 --batch 1 --preset 7b --device cuda --lora-only \\
        --gradient-checkpointing                   # moshi-finetune's setting on a GPU

Weights and codes are random (speed does not depend on them); `lm-small` is bench/lm.py's
105M-parameter configuration. One step = forward, loss, backward, gradient clipping and
AdamW, as `moshi train lm` runs it (moshi/train/lm_task.py), float32 on a CPU, bfloat16
autocast with the frozen weights in bfloat16 on a GPU. `frames_per_s` counts sequence
frames of the batch; `tokens_per_s` counts the tokens read (1 + n_q per frame). Reports
the mean of `--steps` steps after `--warmup`, and on CUDA the peak memory.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from lm import PRESETS, random_model  # bench/lm.py

from moshi.audio import FRAME_RATE
from moshi.lm.lora import LoRAOptions, apply_lora
from moshi.train.distributed import Dist
from moshi.train.lm_task import LMTrainer, LMTrainOptions


class RandomCodes:
    """`n` items [1 + n_q, T] of random tokens."""

    def __init__(self, model: torch.nn.Module, n: int, T: int):
        cfg = model.config  # type: ignore[union-attr]
        g = torch.Generator().manual_seed(0)
        self.items = [torch.randint(0, cfg.card, (cfg.num_streams, T), generator=g) for _ in range(n)]
        for item in self.items:
            item[0] = torch.randint(0, cfg.text_card, (T,), generator=g)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.items[i]


def time_training(args: argparse.Namespace, lora: bool) -> dict:
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = random_model(args.preset, args.device, dtype).train()
    if lora:
        apply_lora(model, LoRAOptions(rank=args.rank, scaling=2.0))
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()  # trainable weights and Adam's state stay float32
    T = math.ceil(args.seconds * FRAME_RATE)  # as the dataset crops
    data = RandomCodes(model, args.batch * (args.warmup + args.steps), T)
    options = LMTrainOptions(
        max_steps=args.warmup + args.steps, lr=1e-5, batch_size=args.batch,
        gradient_checkpointing=args.gradient_checkpointing, shuffle=False,
    )  # fmt: skip
    trainer = LMTrainer(model, data, options, Dist(device=device))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        trainer.train_step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    sync()
    step_s = (time.perf_counter() - t0) / args.steps
    frames = args.batch * T
    line = dict(
        bench=f"train-{args.preset}",
        mode="lora" if lora else "full",
        batch=args.batch,
        seconds=args.seconds,
        step_s=round(step_s, 4),
        frames_per_s=round(frames / step_s, 1),
        tokens_per_s=round(frames * model.config.num_streams / step_s, 1),
        params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        trainable_m=round(sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6, 2),
        gradient_checkpointing=args.gradient_checkpointing,
        threads=torch.get_num_threads(),
        device=args.device,
    )
    if device.type == "cuda":
        line["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return line


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="lm-small")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seconds", type=float, default=10.0, help="sequence duration (duration_sec)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rank", type=int, default=128, help="LoRA rank")
    p.add_argument("--lora-only", action="store_true", help="time LoRA fine-tuning only")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--smoke", action="store_true", help="a tiny run (CI): 1 step of 1 s sequences, batch 1")
    args = p.parse_args()
    if args.smoke:
        args.steps, args.warmup, args.seconds, args.batch = 1, 1, 1.0, 1
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    for lora in [True] if args.lora_only else [False, True]:
        print(json.dumps(time_training(args, lora)), flush=True)


if __name__ == "__main__":
    main()
