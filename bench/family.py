"""The small family's budget (issue 13): weights and speed of the codec and the three LMs of
`recipes/small`, JSON lines. The bar: all weights together at most 50 MB (shipped in
bfloat16), and each task at least 5x faster than real time on 2 CPU threads, i.e. at most
16 ms of work per 80 ms frame:

    stt       Mimi encode of one frame + the LM step (text out)
    tts       the LM step (text, depformer over 8 codebooks) + Mimi decode of one frame
    dialogue  Mimi encode + the LM step + Mimi decode (+ its ear's step: the speech-to-text
              model its config's dialogue_config.ear names, moshi/stt/ear.py)

    python bench/family.py                      # shipped models' configs (moshi/small), else recipes'
    python bench/family.py --repeat 3           # best of 3 (a busy machine)
    python bench/family.py --smoke              # a few steps (CI)

Weights are random (speed does not depend on them); float32 compute, as a CPU runs them.
Each task's config is the shipped model's (`moshi/small/KIND/config.json`) when the package
ships that kind, else `recipes/small/KIND.json`; `--configs DIR` reads `DIR/KIND.json` for all.
`frame_ms` is wall-clock time; `cpu_ms` the process's CPU time per frame, all threads
together: on a machine shared with other work (a training run), `--threads 1` and its
`cpu_ms` estimate what one idle core takes, which bounds what 2 idle cores take.
`meets_speed` reads the smaller of the two.
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from codec import random_mimi  # bench/codec.py

from moshi.audio import FRAME_SIZE
from moshi.codec import Mimi
from moshi.lm import LMModel
from moshi.lm.config import KyutaiConfig
from moshi.lm.generator import Generator
from moshi.small import model_folder, shipped_kinds

RECIPES = Path(__file__).resolve().parent.parent / "recipes" / "small"
TASKS = {"stt": ("encode",), "tts": ("decode",), "dialogue": ("encode", "decode")}
CODEC_PRESET = "mimi-small"
BUDGET_MB = 50.0
FRAME_MS = 80.0
REALTIME_FACTOR = 5.0  # the bar: >= 5x faster than real time
SHIP_BYTES = 2  # bfloat16


def emit(**line: object) -> None:
    print(json.dumps(line), flush=True)


def task_config(task: str, folder: Path | None) -> Path:
    """The config.json a task is timed with: `folder`'s, else the shipped model's, else the recipe's."""
    if folder is not None:
        return folder / f"{task}.json"
    return model_folder(task) / "config.json" if task in shipped_kinds() else RECIPES / f"{task}.json"


def random_lm(config: KyutaiConfig) -> LMModel:
    model = LMModel(config.lm)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    return model.eval()


@torch.no_grad()
def time_task(
    mimi: Mimi, lm: LMModel, parts: tuple[str, ...], steps: int, warmup: int, ear: LMModel | None = None
) -> dict[str, float]:
    """Mean wall-clock ms per frame of each part (`encode`, `lm`, `decode`, `ear`) and the
    same in CPU time (`encode_cpu`, ...), streaming with batch 1."""
    cfg = lm.config
    gen = Generator(lm, temp=0.8, temp_text=0.7, top_k=250, top_k_text=25, seed=0, cuda_graphs=False)
    hear = Generator(ear, temp=0.0, temp_text=0.0, cuda_graphs=False) if ear is not None else None
    pcm = 0.1 * torch.randn(1, 1, FRAME_SIZE)
    user = torch.randint(0, cfg.card, (1, cfg.num_user_streams, 1))
    own = torch.randint(0, cfg.card, (1, mimi.num_codebooks, 1))
    work = {
        "encode": lambda: mimi.encode(pcm) if "encode" in parts else None,
        "lm": lambda: gen.step(user),
        "decode": lambda: mimi.decode(own) if "decode" in parts else None,
        "ear": lambda: hear.step(user) if hear is not None else None,
    }
    totals = dict.fromkeys([*work, *(f"{k}_cpu" for k in work)], 0.0)
    with mimi.streaming(1), gen.streaming(1), hear.streaming(1) if hear is not None else nullcontext():
        for i in range(warmup + steps):
            for name, fn in work.items():
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                t1, c1 = time.perf_counter(), time.process_time()
                if i >= warmup:
                    totals[name] += 1000 * (t1 - t0) / steps
                    totals[f"{name}_cpu"] += 1000 * (c1 - c0) / steps
    return totals


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--configs", type=Path, default=None, help="folder of stt.json, tts.json, dialogue.json (else: above)"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeat", type=int, default=1, help="keep the best of this many runs")
    p.add_argument("--smoke", action="store_true", help="a few steps only (CI)")
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    steps, warmup = (3, 1) if args.smoke else (args.steps, 5)
    mimi = random_mimi(0, CODEC_PRESET)
    codec_params = sum(x.numel() for x in mimi.parameters())
    emit(bench="family", model="codec", params_m=round(codec_params / 1e6, 3),
         mb_bf16=round(codec_params * SHIP_BYTES / 1e6, 2))  # fmt: skip
    total = codec_params
    for task, parts in TASKS.items():
        path = task_config(task, args.configs)
        config = KyutaiConfig.load(path)
        lm = random_lm(config)
        params = sum(x.numel() for x in lm.parameters())
        total += params
        ear_config = path.parent / config.ear_name / "config.json" if config.ear_name else None
        ear = random_lm(KyutaiConfig.load(ear_config)) if ear_config is not None else None
        runs = [time_task(mimi, lm, parts, steps, warmup, ear) for _ in range(args.repeat)]
        names = ["lm", *parts, *(["ear"] if ear is not None else [])]
        best = min(runs, key=lambda r: sum(r[k] for k in names))
        frame_ms = sum(best[k] for k in names)
        cpu_ms = min(sum(r[f"{k}_cpu"] for k in names) for r in runs)
        emit(
            bench="family",
            model=task,
            config=str(path),
            params_m=round(params / 1e6, 3),
            mb_bf16=round(params * SHIP_BYTES / 1e6, 2),
            **{f"{k}_ms": round(best[k], 2) for k in names},
            **{f"{k}_cpu_ms": round(best[f"{k}_cpu"], 2) for k in names},
            frame_ms=round(frame_ms, 2),
            cpu_ms=round(cpu_ms, 2),
            realtime_x=round(FRAME_MS / frame_ms, 1),
            realtime_x_cpu=round(FRAME_MS / cpu_ms, 1),
            meets_speed=FRAME_MS / min(frame_ms, cpu_ms) >= REALTIME_FACTOR,
            threads=args.threads,
            runs=len(runs),
        )
    mb = total * SHIP_BYTES / 1e6
    emit(bench="family", model="all", params_m=round(total / 1e6, 3), mb_bf16=round(mb, 2),
         meets_size=mb <= BUDGET_MB)  # fmt: skip


if __name__ == "__main__":
    main()
