"""Text-to-speech speed: time to first audio and real-time factor, JSON lines.

    python bench/tts.py                                    # tiny and tts-100m on 2 CPU threads
    python bench/tts.py --smoke                            # a few steps of the tiny model (CI)
    python bench/tts.py --preset 1.6b --device cuda --dtype bfloat16 --batch 1 8

Weights are random (speed does not depend on them), voices too. Each run speaks the same
script with sampling on, and the audio is decoded through Mimi frame by frame as it comes
(the released Mimi architecture, tiny Mimi for the tiny model). `ttfa_ms`: from the start
to the first decoded audio of every item (the audio lags the text by `delay_steps`
frames, so this is about delay_steps + 3 steps). `rtf`: seconds of compute per second of
audio, as everywhere in bench/ (< 1: faster than real time); `throughput`: seconds of audio
made per second of compute, the whole batch together.

Presets: `tiny` is the parity fixture's shape; `tts-100m` a ~100M-parameter model of the
same family; `1.6b` approximates kyutai/tts-1.6b-en_fr (2048 wide, 16 layers, 32
codebooks, a 4-layer depformer of width 1024, audio 16 steps behind the text). The real
model shares depformer weights between codebooks, which changes its size, not its speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from moshi.codec import Mimi, MimiConfig
from moshi.lm import LMConfig, LMModel
from moshi.lm.conditioners import ConditionerConfig, FuserConfig
from moshi.lm.loading import FLOAT32_PREFIXES
from moshi.tts import TTS
from moshi.tts.voices import speakers_condition

REPO = Path(__file__).resolve().parent.parent
TOKENIZER = REPO / "tests" / "fixtures" / "tiny_spm_100.model"
MIMI_TINY = REPO / "tests" / "fixtures" / "mimi_tiny" / "config.json"
CFG_VALUES = ("1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0")
SCRIPT = (
    "The quick brown fox jumps over the lazy dog while the sun sets behind the hills, "
    "and nobody in the little village seems to notice anything at all."
)


def tts_config(n_q: int, voice_dim: int, **kwargs: object) -> LMConfig:
    """A TTS-shaped LM: every audio stream generated, a voice through cross-attention,
    `control` and a distilled `cfg` summed into the input."""
    conditioners = (
        ConditionerConfig("speaker_wavs", "tensor", voice_dim),
        ConditionerConfig("control", "lut", 16, 1, ("ok",)),
        ConditionerConfig("cfg", "lut", 16, len(CFG_VALUES), CFG_VALUES),
    )
    return LMConfig(
        n_q=n_q,
        dep_q=n_q,
        delays=(0, 0) + (2,) * (n_q - 1),
        conditioners=conditioners,
        fuser=FuserConfig(("control", "cfg"), ("speaker_wavs",), True, 1.0),
        cross_attention=True,
        **kwargs,  # type: ignore[arg-type]
    )


PRESETS: dict[str, dict] = {
    "tiny": dict(
        delay_steps=4,
        voice=(32, 10),
        lm=dict(n_q=8, voice_dim=32, dim=64, num_heads=4, num_layers=2, context=60, text_card=100,
                card=64, depformer_dim=32, depformer_num_heads=2, depformer_num_layers=2,
                depformer_dim_feedforward=132),
    ),
    "tts-100m": dict(
        delay_steps=16,
        voice=(512, 125),
        lm=dict(n_q=16, voice_dim=512, dim=512, num_heads=8, num_layers=8, context=500, text_card=8000,
                depformer_dim=256, depformer_num_heads=4, depformer_num_layers=2,
                depformer_dim_feedforward=int(4.125 * 256)),
    ),
    "1.6b": dict(
        delay_steps=16,
        voice=(512, 125),
        lm=dict(n_q=32, voice_dim=512, dim=2048, num_heads=16, num_layers=16, context=500, text_card=8000,
                depformer_dim=1024, depformer_num_heads=16, depformer_num_layers=4,
                depformer_dim_feedforward=3072),
    ),
}  # fmt: skip


def randomize(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            if t.is_floating_point():
                t.normal_(0.0, 0.02)


def cast_lm(lm: LMModel, dtype: torch.dtype) -> None:
    """The LM's parameters in `dtype` (in place), the conditioners' excepted, as loading does."""
    for name, p in lm.named_parameters():
        if not name.startswith(FLOAT32_PREFIXES):
            p.data = p.data.to(dtype)


def build(preset: str, device: str, dtype: torch.dtype, smoke: bool) -> tuple[TTS, Mimi, dict]:
    spec = PRESETS[preset]
    lm_kwargs = dict(spec["lm"])
    with torch.device(device):
        lm = LMModel(tts_config(lm_kwargs.pop("n_q"), lm_kwargs.pop("voice_dim"), **lm_kwargs))
        mimi_cfg = MimiConfig.from_kyutai(MIMI_TINY) if preset == "tiny" else MimiConfig()
        mimi = Mimi(mimi_cfg, num_codebooks=lm.config.dep_q)
    randomize(lm)
    randomize(mimi)
    cast_lm(lm, dtype)
    max_steps = 12 if smoke else 4500
    tts = TTS(lm.eval(), TOKENIZER, delay_steps=spec["delay_steps"], temp=0.6, seed=0, max_steps=max_steps)
    dim, frames = spec["voice"]
    voice = speakers_condition([torch.randn(frames, dim)])
    return tts, mimi.eval(), {"speaker_wavs": voice, "control": "ok", "cfg": "2.0"}


def run(tts: TTS, mimi: Mimi, conditions: dict, batch: int, script: str) -> dict:
    """One generation of `script` for `batch` items, audio decoded as it comes."""
    device = next(mimi.parameters()).device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    feeders = [tts.feeder([script]) for _ in range(batch)]
    t0 = time.perf_counter()
    first, frames = None, 0
    with mimi.streaming(batch):
        for t, frame in enumerate(tts.frames(feeders, [conditions] * batch)):
            if t >= tts.delay_steps:
                mimi.decode(frame[:, 1:].to(device))
                frames += 1
                if first is None:
                    sync()
                    first = time.perf_counter() - t0
    sync()
    elapsed = time.perf_counter() - t0
    audio = frames / mimi.frame_rate
    return dict(
        ttfa_ms=round(1000 * (first or elapsed), 1),
        audio_s=round(audio, 2),
        step_ms=round(1000 * elapsed / max(1, frames + tts.delay_steps + tts.model.config.max_delay), 2),
        rtf=round(elapsed / audio, 3),
        throughput=round(batch * audio / elapsed, 3),
        words=len(feeders[0].machine.transcript),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), nargs="+", default=["tiny", "tts-100m"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    p.add_argument("--batch", type=int, nargs="+", default=[1])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--smoke", action="store_true", help="the tiny model, a few steps (CI)")
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    # Random weights drive some activations into denormal floats, which CPUs compute
    # hundreds of times slower (a benchmark artifact, trained weights do not): flush them.
    torch.set_flush_denormal(True)
    presets = ["tiny"] if args.smoke else args.preset
    for preset in presets:
        tts, mimi, conditions = build(preset, args.device, getattr(torch, args.dtype), args.smoke)
        params = sum(p.numel() for p in tts.model.parameters())
        for batch in args.batch:
            with torch.no_grad():
                run(tts, mimi, conditions, batch, "warm up")  # allocations, CUDA graph capture
                stats = run(tts, mimi, conditions, batch, SCRIPT)
            line = dict(bench=f"tts-{preset}" if preset != "tts-100m" else preset, impl="ours")
            line |= dict(device=args.device, dtype=args.dtype, batch=batch, threads=args.threads)
            line |= dict(params_m=round(params / 1e6, 1), delay_steps=tts.delay_steps, **stats)
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    sys.exit(main())
