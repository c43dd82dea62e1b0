"""Kyutai's speech models on a CPU (issue 17's numbers): one run, JSON lines, 2 threads.

    .venv/bin/python bench/cpu.py                  # everything; Kyutai's too if its venv exists
    .venv/bin/python bench/cpu.py --only stt mimi  # some sections
    .venv/bin/python bench/cpu.py --smoke          # tiny sizes, seconds (CI)

Weights are random (speed does not depend on their values), in the real configurations:

- `stt-1b-en_fr`: ms per 80 ms frame, Mimi's streaming encode (32 codebooks) + one LM step
  (no depformer), as `moshi transcribe` runs it, in float32, bfloat16 and int8
  (`moshi.quantize` on the LM and Mimi, as `--dtype bfloat16` and `--int8` load them on a
  CPU). Its config is
  tests/fixtures/stt_26b_config.json (kyutai/stt-2.6b-en) changed where stt-1b-en_fr differs
  (`STT_1B`, from the model cards: 16 layers of 16 heads, context 750, an 8000-token text
  vocabulary, the 4 x 6 voice-activity heads, 0.5 s text delay). Goal: <= 80 ms.
- `tts-1.6b-en_fr`: real-time factor (compute / audio, in the steady state) and time to
  first audio at batch 1, the released config (tests/fixtures/tts_16b_checkpoint_keys.json),
  32 codebooks, a random voice; audio decoded by Mimi as it comes. Goal: rtf <= 1.
- `mimi-stream`: Mimi exact, encode + decode of one frame per call, 8 codebooks (as Moshi's
  dialogue, and Kyutai's bench_reference.py). Goals: <= 1.5 x the floor, >= 2 x faster
  than Kyutai's in the same run.
- `lm-small`: bench/lm.py's 105M-parameter LM step. Goals: <= 1.3 x the floor, >= 1.5 x
  faster than Kyutai's in the same run.

Every line carries the floor (bench/floor.py: weight bytes read per call / streaming
bandwidth, measured once at the start), its goal and whether it passes, the CPU model and
the thread count. Kyutai's lines need its venv (shared/peer/setup.sh); without it they say
why they were skipped. `--repeat N` keeps the best of N (ours and Kyutai's alternate,
against neighbours' load).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path

import codec as codec_bench
import lm as lm_bench
import torch
import tts as tts_bench
from floor import BANDWIDTH_BYTES, Floor, WeightReads, cpu_model

from moshi import quantize
from moshi.codec import Mimi, MimiConfig
from moshi.lm import LMConfig, LMModel
from moshi.lm.config import KyutaiConfig
from moshi.lm.generator import Generator
from moshi.tts import TTS
from moshi.tts.options import TTSConfig

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
PEER_PYTHON = Path("/tmp/moshi-peer-venv/bin/python")
# shared/ beside the checkout (bench/lm.py's default), or beside its parent (a worktree in wt/)
REFERENCE_SCRIPTS = [lm_bench.REFERENCE_SCRIPT, REPO.parents[1] / "shared" / "peer" / "bench_reference.py"]
STT_1B = dict(  # where kyutai/stt-1b-en_fr differs from stt-2.6b-en (shared docs, reference notes)
    num_layers=16,
    num_heads=16,
    context=750,
    text_card=8000,
    extra_heads_num_heads=4,
    extra_heads_dim=6,
    stt_config={"audio_delay_seconds": 0.5, "audio_silence_prefix_seconds": 0.0},
    tokenizer_name="tokenizer_en_fr_audio_8000.model",
)
SMOKE_BANDWIDTH_BYTES = 64 << 20
TINY_LM = dict(dim=64, num_heads=4, num_layers=2, context=60, text_card=100)  # --smoke
TINY_DEPFORMER = dict(card=64, depformer_dim=32, depformer_num_heads=2, depformer_num_layers=2)
STT_GOAL_MS = 80.0
TTS_GOAL_RTF = 1.0
MIMI_GOAL_FLOOR, MIMI_GOAL_SPEEDUP = 1.5, 2.0
LM_GOAL_FLOOR, LM_GOAL_SPEEDUP = 1.3, 1.5
Emit = Callable[..., None]


def stt_config(smoke: bool, mimi: Mimi) -> LMConfig:
    raw = json.loads((FIXTURES / "stt_26b_config.json").read_text()) | STT_1B
    if smoke:
        n = mimi.total_codebooks
        raw |= TINY_LM | dict(card=mimi.cardinality, n_q=n, delays=[0] * (n + 1))
    return KyutaiConfig.parse(raw).lm


def params_m(model: torch.nn.Module) -> float:
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 1)


def random_lm(cfg: LMConfig) -> LMModel:
    """A float32 LM of `cfg` with seeded random weights (speed does not depend on them)."""
    torch.manual_seed(0)
    lm = LMModel(cfg)
    tts_bench.randomize(lm)
    return lm.eval()


def random_mimi(smoke: bool, num_codebooks: int) -> Mimi:
    """The released Mimi (the tiny one for --smoke), random weights."""
    if smoke:
        mimi = Mimi(MimiConfig.from_kyutai(tts_bench.MIMI_TINY), num_codebooks=num_codebooks)
        tts_bench.randomize(mimi)
        return mimi.eval()
    mimi = codec_bench.random_mimi(0)
    mimi.set_num_codebooks(num_codebooks)
    return mimi


def stt_frames(lm: LMModel, mimi: Mimi, frames: int, warmup: int, floor: Floor) -> dict:
    """Encode one frame then step the LM, `frames` times: ms per frame (and its parts)."""
    gen = Generator(lm, temp=0.0, temp_text=0.0)
    pcm = 0.1 * torch.randn(1, 1, mimi.frame_size * (warmup + frames + 1))
    chunks = iter(pcm.split(mimi.frame_size, dim=-1))
    encode = step = 0.0
    with torch.no_grad(), mimi.streaming(1), gen.streaming(1):
        with WeightReads(mimi) as mimi_reads:
            codes = mimi.encode(next(chunks))
        with WeightReads(lm) as lm_reads:
            gen.step_with_extra_heads(codes)
        for i in range(warmup + frames):
            t0 = time.perf_counter()
            codes = mimi.encode(next(chunks))
            t1 = time.perf_counter()
            gen.step_with_extra_heads(codes)
            t2 = time.perf_counter()
            if i >= warmup:
                encode, step = encode + t1 - t0, step + t2 - t1
    encode_ms, step_ms = 1000 * encode / frames, 1000 * step / frames
    frame_ms = encode_ms + step_ms
    return dict(
        frame_ms=round(frame_ms, 2),
        encode_ms=round(encode_ms, 2),
        step_ms=round(step_ms, 2),
        **floor.line(frame_ms, mimi_reads.nbytes + lm_reads.nbytes),
        goal=f"frame_ms <= {STT_GOAL_MS:g}",
        passed=frame_ms <= STT_GOAL_MS,
    )


def bench_stt(args: argparse.Namespace, floor: Floor, emit: Emit) -> None:
    frames, warmup = (2, 1) if args.smoke else (args.frames, 3)
    for precision in ("float32", "bfloat16", "int8"):
        mimi = random_mimi(args.smoke, 32)
        cfg = stt_config(args.smoke, mimi)
        lm = random_lm(cfg)
        params = params_m(lm)
        low_precision(lm, mimi, precision)
        runs = [stt_frames(lm, mimi, frames, warmup, floor) for _ in range(args.repeat)]
        line = min(runs, key=lambda r: r["frame_ms"])
        kind = "exact" if precision == "float32" else "approximate (opt-in)"
        mimi_precision = precision
        emit(
            bench="stt-1b-en_fr",
            precision=precision,
            mimi=mimi_precision,
            kind=kind,
            params_m=params,
            **line,
        )
        del lm, mimi


def low_precision(lm: LMModel, mimi: Mimi, precision: str) -> None:
    """The opt-in weights of `precision` (bfloat16 or int8) in the LM and Mimi, as
    `--dtype bfloat16` and `--int8` load them on a CPU; float32 leaves both exact."""
    if precision != "float32":
        quantize.apply_lm(lm, precision)
        quantize.apply(mimi, precision)


def tts_model(smoke: bool, precision: str, steps: int) -> tuple[TTS, Mimi, dict]:
    """The released TTS config with random weights (the tiny bench/tts.py one for --smoke)."""
    if smoke:
        tts, mimi, conditions = tts_bench.build("tiny", "cpu", torch.float32, smoke=True)
        low_precision(tts.model, mimi, precision)
        return tts, mimi, conditions
    raw = json.loads((FIXTURES / "tts_16b_checkpoint_keys.json").read_text())["config"]
    kcfg = KyutaiConfig.parse(raw)
    config = TTSConfig.parse(kcfg)
    lm = random_lm(kcfg.lm)
    mimi = random_mimi(False, lm.config.dep_q)
    low_precision(lm, mimi, precision)
    tts = TTS(
        lm,
        tts_bench.TOKENIZER,
        delay_steps=config.delay_steps,
        second_stream_ahead=config.second_stream_ahead,
        temp=0.6,
        seed=0,
        max_steps=steps,
    )
    voice = tts_bench.speakers_condition([torch.randn(125, 512)])
    return tts, mimi, {"speaker_wavs": voice, "control": "ok", "cfg": "2.0"}


def tts_run(tts: TTS, mimi: Mimi, conditions: dict, floor: Floor) -> dict:
    """One generation at batch 1, audio decoded as it comes: time to first audio, and the
    steady state (ms per frame after the first audio, rtf = that / 80 ms)."""
    feeder = tts.feeder([tts_bench.SCRIPT])
    frames: Iterator[torch.Tensor] = tts.frames([feeder], [conditions], pace=False)
    t0 = time.perf_counter()
    first, audio, count_at, nbytes = None, 0, tts.delay_steps + 1, 0
    with torch.no_grad(), mimi.streaming(1):
        for t in range(tts.options.max_steps):
            reads = WeightReads(tts.model, mimi) if t == count_at else nullcontext()
            with reads:
                frame = next(frames, None)
                if frame is not None and t >= tts.delay_steps:
                    mimi.decode(frame[:, 1:])
            if frame is None:
                break
            if isinstance(reads, WeightReads):
                nbytes = reads.nbytes
            if t >= tts.delay_steps:
                audio += 1
                if first is None:
                    first = time.perf_counter()
    end = time.perf_counter()
    steady_ms = 1000 * (end - (first or end)) / max(1, audio - 1)
    rtf = steady_ms / (1000 / mimi.frame_rate)
    return dict(
        ttfa_ms=round(1000 * ((first or end) - t0), 1),
        frame_ms=round(steady_ms, 2),
        rtf=round(rtf, 3),
        audio_s=round(audio / mimi.frame_rate, 2),
        **floor.line(steady_ms, nbytes),
        goal=f"rtf <= {TTS_GOAL_RTF:g}",
        passed=rtf <= TTS_GOAL_RTF,
    )


def bench_tts(args: argparse.Namespace, floor: Floor, emit: Emit) -> None:
    for precision in ("float32", "bfloat16", "int8"):
        tts, mimi, conditions = tts_model(args.smoke, precision, 12 if args.smoke else args.tts_steps)
        runs = [tts_run(tts, mimi, conditions, floor) for _ in range(args.repeat)]
        line = min(runs, key=lambda r: r["rtf"])
        config = dict(batch=1, n_q=tts.model.config.n_q, delay_steps=tts.delay_steps)
        emit(bench="tts-1.6b-en_fr", precision=precision, **config, **line)
        del tts, mimi


def reference(args: argparse.Namespace, bench: str) -> tuple[dict | None, str]:
    """One run of Kyutai's `bench` line, or None and why not."""
    python, script = Path(args.reference), Path(args.reference_script)
    if args.smoke:
        return None, "skipped: --smoke"
    if not python.exists() or not script.exists():
        missing = f"peer venv at {python}" if not python.exists() else f"script at {script}"
        return None, f"skipped: no {missing}"
    try:
        return lm_bench.reference_line(str(python), [str(script), bench], args.threads), "ran"
    except (subprocess.CalledProcessError, json.JSONDecodeError, IndexError) as e:
        return None, f"failed: {type(e).__name__}"


def best_of(
    args: argparse.Namespace, ours: Callable[[], float], bench: str, ref_ms: Callable[[dict], float]
) -> tuple[float, float | None, str | None, str]:
    """(our best ms, Kyutai's best ms or None, its impl, why not) over --repeat runs, ours
    and Kyutai's alternating (a neighbour's load hits both alike)."""
    mine: list[float] = []
    theirs: list[float] = []
    impl, status = None, ""
    for _ in range(args.repeat):
        mine.append(ours())
        ref, status = reference(args, bench)
        if ref is not None:
            theirs.append(ref_ms(ref))
            impl = ref.get("impl")
    return min(mine), min(theirs, default=None), impl, status


def bench_mimi(args: argparse.Namespace, floor: Floor, emit: Emit) -> None:
    mimi = random_mimi(args.smoke, 8)
    frames = 3 if args.smoke else args.frames
    parts: list[dict] = []

    def ours() -> float:
        parts.append(codec_bench.bench_stream(mimi, frames))
        return parts[-1]["encode_ms"] + parts[-1]["decode_ms"]

    ms, ref_ms, impl, status = best_of(args, ours, "mimi-stream", lambda r: r["encode_ms"] + r["decode_ms"])
    fastest = min(parts, key=lambda r: r["rtf"])
    chunk = 0.1 * torch.randn(1, 1, mimi.frame_size)
    with torch.no_grad(), mimi.streaming(1), WeightReads(mimi) as reads:
        mimi.decode(mimi.encode(chunk))
    line = dict(bench="mimi-stream", kind="exact", codebooks=8, frame_ms=round(ms, 2))
    line |= dict(
        encode_ms=fastest["encode_ms"], decode_ms=fastest["decode_ms"], **floor.line(ms, reads.nbytes)
    )
    emit(**goal_met(line, ms, ref_ms, impl, status, MIMI_GOAL_FLOOR, MIMI_GOAL_SPEEDUP))


def bench_lm_small(args: argparse.Namespace, floor: Floor, emit: Emit) -> None:
    if args.smoke:
        lm = random_lm(LMConfig(**TINY_LM, **TINY_DEPFORMER))
    else:
        lm = lm_bench.random_model("lm-small", "cpu", torch.float32)
    gen = Generator(lm, temp=0.8, temp_text=0.7, top_k=250, top_k_text=25, seed=0)
    steps, warmup = (3, 2) if args.smoke else (30, lm_bench.WARMUP)
    ms, ref_ms, impl, status = best_of(
        args, lambda: lm_bench.time_steps(gen, 1, steps, warmup), "lm-small", lambda r: r["step_ms"]
    )
    codes = torch.randint(0, lm.config.card, (1, lm.config.num_user_streams, 1))
    with gen.streaming(1):
        gen.step(codes)
        with WeightReads(lm) as reads:
            gen.step(codes)
    line = dict(bench="lm-small", kind="exact", step_ms=round(ms, 2), **floor.line(ms, reads.nbytes))
    emit(**goal_met(line, ms, ref_ms, impl, status, LM_GOAL_FLOOR, LM_GOAL_SPEEDUP))


def goal_met(
    line: dict, ms: float, ref_ms: float | None, impl: str | None, status: str, floor: float, speedup: float
) -> dict:
    """`line` with Kyutai's time and our speedup (or why not), the goals, and whether they pass."""
    line["reference"] = status
    if ref_ms is not None:
        line |= dict(reference_ms=round(ref_ms, 2), reference_impl=impl, speedup=round(ref_ms / ms, 2))
        line["passed_speedup"] = line["speedup"] >= speedup
    line["goal"] = f"floor_ratio <= {floor:g} and speedup >= {speedup:g} (vs Kyutai's)"
    line["passed_floor"] = line["floor_ratio"] <= floor
    line["passed"] = line["passed_floor"] and line.get("passed_speedup", False)
    return line


SECTIONS = {"stt": bench_stt, "tts": bench_tts, "mimi": bench_mimi, "lm-small": bench_lm_small}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=sorted(SECTIONS), default=list(SECTIONS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--frames", type=int, default=20, help="streaming frames timed (stt, mimi)")
    p.add_argument("--tts-steps", type=int, default=56, help="TTS steps per generation (delay included)")
    p.add_argument("--repeat", type=int, default=1, help="keep the best of this many runs")
    p.add_argument("--smoke", action="store_true", help="tiny models, seconds (CI); no reference")
    p.add_argument("--reference", default=str(PEER_PYTHON), help="python of Kyutai's venv")
    script = next((s for s in REFERENCE_SCRIPTS if s.exists()), REFERENCE_SCRIPTS[0])
    p.add_argument("--reference-script", default=str(script))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    # Random weights drive some activations into denormal floats, which CPUs compute
    # hundreds of times slower (a benchmark artifact, trained weights do not): flush them.
    torch.set_flush_denormal(True)
    floor = Floor.measure(SMOKE_BANDWIDTH_BYTES if args.smoke else BANDWIDTH_BYTES)
    machine = dict(machine=cpu_model(), threads=args.threads)

    def emit(**line: object) -> None:
        print(json.dumps({**line, **machine}), flush=True)

    for name in args.only:
        SECTIONS[name](args, floor, emit)


if __name__ == "__main__":
    main()
