"""Quality against the corpus' held-out set, JSON lines: the recogniser's baseline
(pocketsphinx with the corpus grammar, on the synthesisers' own audio), the denominator of
the codec and TTS bars of issue 13, and with `--codec` the same on a codec's round trip,
with the ratio of the two word error rates and STOI (the codec bar: STOI >= 0.85, WER ratio
<= 1.15).

    python bench/quality.py /work/corpus                      # held-out stt (users) and tts (Moshi)
    python bench/quality.py /work/corpus --limit 50 --split train
    python bench/quality.py corpus --limit 25 --codec CKPT/mimi.safetensors CKPT/mimi_config.json
    python bench/quality.py corpus --limit 40 --shipped   # the model card's figures (moshi/small)

With `--stt`, `--tts` or `--dialogue` (model folders: a checkpoint's `consolidated/`), the
bars of the small family's language models instead (bench/quality_lm.py says what each
measures); `--stt` with `--tts` also reads the TTS's speech back with our STT:

    python bench/quality.py corpus --limit 40 --stt runs/small-stt/checkpoints/checkpoint_002000/consolidated
    python bench/quality.py corpus --limit 20 --tts TTS_DIR --stt STT_DIR
    python bench/quality.py corpus --limit 20 --dialogue DIALOGUE_DIR [--temp-text 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from moshi.codec import load_mimi
from moshi.eval.manifest import read_manifest, recogniser_wer
from moshi.eval.recogniser import Recogniser
from moshi.eval.stoi import stoi
from moshi.lm.config import KyutaiConfig
from moshi.lm.sampling import SamplingOptions

DEFAULT_TEMP = 0.6  # audio sampling temperature where neither --temp nor the model says


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", type=Path, help="a corpus built by `moshi data build`")
    p.add_argument("--split", default="heldout", choices=["train", "heldout"])
    p.add_argument("--kinds", nargs="+", default=["stt", "tts"], choices=["stt", "tts"])
    p.add_argument("--limit", type=int, default=None, help="the first N files of each manifest")
    p.add_argument(
        "--codec", type=Path, nargs=2, metavar=("WEIGHTS", "CONFIG"),
        help="also through this codec (a Mimi file and its config json, e.g. a checkpoint's)",
    )  # fmt: skip
    p.add_argument(
        "--stt",
        type=Path,
        metavar="MODEL_DIR",
        help="our speech-to-text model (--dialogue: reads replies too)",
    )
    p.add_argument("--tts", type=Path, metavar="MODEL_DIR", help="our text-to-speech model")
    p.add_argument("--dialogue", type=Path, metavar="MODEL_DIR", help="our dialogue model")
    p.add_argument(
        "--ear", type=Path, metavar="MODEL_DIR",
        help="--dialogue: a speech-to-text model that writes down the user's words for it (moshi/stt/ear.py;"
             " default: the one its config names; none: it hears alone)",
    )  # fmt: skip
    p.add_argument(
        "--temp", type=float, default=None,
        help=f"audio sampling temperature of --tts ({DEFAULT_TEMP}) and --dialogue (the model's"
             f" lm_gen_config, as moshi serve, chat and infer use it, else {DEFAULT_TEMP})",
    )  # fmt: skip
    p.add_argument(
        "--temp-text", type=float, default=None,
        help="--dialogue: the text's temperature (default: the model's lm_gen_config, as moshi serve,"
             " chat and infer use it, else --temp; 0: greedy text)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="sampling seed of --tts and --dialogue")
    p.add_argument(
        "--replies", choices=["audio", "text"], default="audio",
        help="--dialogue: read each reply from Moshi's channel (pocketsphinx) or its text stream",
    )  # fmt: skip
    p.add_argument(
        "--shipped", action="store_true",
        help="the family in moshi/small (its codec and every shipped kind): the model card's figures",
    )  # fmt: skip
    p.add_argument("--threads", type=int, help="torch's CPU threads (a busy machine: 1 is often faster)")
    args = p.parse_args()
    if args.shipped:
        _use_shipped(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    recogniser = Recogniser(args.corpus)
    if args.stt or args.tts or args.dialogue:
        _models(args, recogniser)
        if args.codec is None:
            return
    round_trip = None
    if args.codec is not None:
        mimi = load_mimi(*args.codec)
        round_trip = lambda pcm: _round_trip(mimi, pcm)  # noqa: E731
    for kind in args.kinds:
        manifest = args.corpus / args.split / f"{kind}.jsonl"
        rows = {"original": _wer_row(recogniser, manifest, None, args.limit)}
        if round_trip is not None:
            rows["codec"] = _wer_row(recogniser, manifest, round_trip, args.limit)
        for audio, row in rows.items():
            print(
                json.dumps({"bench": "quality", "metric": "recogniser_wer", "audio": audio, **row}),
                flush=True,
            )
        if round_trip is not None:
            scores = [stoi(pcm, round_trip(pcm)) for pcm in _audio(manifest, args.limit)]
            ratio = rows["codec"]["wer"] / max(rows["original"]["wer"], 1e-9)
            print(json.dumps({"bench": "quality", "metric": "codec", "manifest": rows["codec"]["manifest"],
                              "stoi_mean": round(float(np.nanmean(scores)), 4), "wer_ratio": round(ratio, 3),
                              "stoi_files": int(np.isfinite(scores).sum()),  # the rest too short for it
                              "codec": str(args.codec[0])}), flush=True)  # fmt: skip


def _use_shipped(args: argparse.Namespace) -> None:
    """--shipped: the codec and the language models of moshi/small, in place of any given."""
    from moshi.codec import MIMI_CONFIG, MIMI_WEIGHTS
    from moshi.small import FOLDER, model_folder, shipped_kinds

    args.codec = (FOLDER / MIMI_WEIGHTS, FOLDER / MIMI_CONFIG)
    for kind in shipped_kinds():
        setattr(args, kind, model_folder(kind))


def _models(args: argparse.Namespace, recogniser: Recogniser) -> None:
    import quality_lm as q  # bench/quality_lm.py

    def emit(metric: str, manifest: str, row: dict, **extra: object) -> None:
        print(
            json.dumps({"bench": "quality", "metric": metric, "manifest": manifest, **extra, **row}),
            flush=True,
        )

    stt = q.SpeechToText(args.stt) if args.stt else None
    if stt is not None:
        for kind in args.kinds:
            manifest = f"{args.split}/{kind}.jsonl"
            emit("stt", manifest, q.stt_row(stt, args.corpus / manifest, args.limit), model=str(args.stt))
    if args.tts:
        manifest = f"{args.split}/tts.jsonl"
        temp = DEFAULT_TEMP if args.temp is None else args.temp
        row = q.tts_rows(recogniser, args.tts, args.corpus / manifest, args.limit, stt, temp, args.seed)
        emit("tts", manifest, row, model=str(args.tts))
    if args.dialogue:
        manifest = f"{args.split}/dialogues.jsonl"
        # What the model's users get (cli.options.model_sampling), unless given.
        model_config = KyutaiConfig.load(args.dialogue / "config.json")
        sampling = model_config.lm_gen_config
        ear = str(args.ear) if args.ear is not None else model_config.ear_name  # (None: it hears alone)
        temp = sampling.get("temp", DEFAULT_TEMP) if args.temp is None else args.temp
        temp_text = sampling.get("temp_text", temp) if args.temp_text is None else args.temp_text
        seeds = {"text_seed": args.seed, "audio_seed": args.seed}
        options = SamplingOptions(temp=temp, temp_text=temp_text, **seeds)
        reader = recogniser if args.replies == "audio" else None
        rows = q.dialogue_rows(
            reader, args.dialogue, args.corpus / manifest, args.limit, options, args.ear, stt
        )
        if not rows:
            print(f"bench quality: no dialogues in {args.corpus / manifest}: none measured", file=sys.stderr)
        for audio, row in rows.items():
            emit("dialogue", manifest, row, audio=audio, replies=args.replies, model=str(args.dialogue),
                 temp=temp, temp_text=temp_text, ear=ear)  # fmt: skip


def _wer_row(recogniser: Recogniser, manifest: Path, transform, limit: int | None) -> dict:
    t0 = time.perf_counter()
    row = recogniser_wer(recogniser, manifest, transform=transform, limit=limit)
    row["manifest"] = f"{manifest.parent.name}/{manifest.name}"
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def _audio(manifest: Path, limit: int | None) -> list[np.ndarray]:
    from moshi.audio import read_audio

    return [read_audio(entry.wav) for entry in read_manifest(manifest, limit)]


@torch.no_grad()
def _round_trip(mimi, pcm: np.ndarray) -> np.ndarray:
    """[T] -> the codec's encode + decode of it, [T] (padded to whole frames, then cut)."""
    frames = -(-len(pcm) // mimi.frame_size)
    x = torch.zeros(1, 1, frames * mimi.frame_size)
    x[0, 0, : len(pcm)] = torch.from_numpy(pcm)
    return mimi.decode(mimi.encode(x))[0, 0, : len(pcm)].numpy()


if __name__ == "__main__":
    main()
