#!/usr/bin/env python3
"""Ship the small family: write moshi/small/ (the package's models) from training checkpoints.

    python recipes/small/ship.py --codec recipes/small/checkpoints/codec-008000 \\
        --stt runs/small-stt/checkpoints/checkpoint_NNNNNN/consolidated --tokenizer corpus/tokenizer.model

Kinds not given (--stt, --tts, --dialogue) are not shipped (a previous one is removed).
With --replace, only the language models given are written; the codec, the tokenizer and the
other kinds already in --out stay (the source checkpoints of the others are not needed):

    python recipes/small/ship.py --replace --dialogue runs/RUN/checkpoints/checkpoint_NNNNNN/consolidated

`--replace --codec DIR` swaps the codec's decoder alone, after checking that DIR's encoder and
quantizer are the shipped ones (a decoder trained alone: `model.decoder_only`), so the codes
every shipped language model learnt stay the same:

    python recipes/small/ship.py --replace --codec runs/RUN/checkpoints/checkpoint_NNNNNN/consolidated

`--context KIND=FRAMES` sets a model's attention context in its shipped config (the frames
it attends over: about its training crops', see moshi/small/ship.py); `--temp KIND=T` its audio's
sampling temperature (`lm_gen_config.temp`); `--ear`: the shipped speech-to-text model writes
down the user's words for the dialogue model (moshi/stt/ear.py).

Weights go in bfloat16; moshi/small/manifest.json records each file's sha256, parameters,
training step and this checkout's commit (--commit for another). Then commit moshi/small/.
A maintainer's step of this recipe, so not a `moshi` subcommand: the library is moshi/small/ship.py.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from moshi.small import KINDS
from moshi.small.ship import ENCODER, FLOAT32, Settings, replace, replace_decoder, ship

CHECKOUT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--codec", type=Path, help="folder of mimi.safetensors + mimi_config.json (--replace: its decoder)"
    )
    p.add_argument("--tokenizer", type=Path, help="the SentencePiece model the LMs read")
    p.add_argument(
        "--replace", action="store_true", help="replace the LMs (and decoder) given, keep the rest of --out"
    )
    for kind in KINDS:
        p.add_argument(f"--{kind}", type=Path, metavar="DIR", help=f"the {kind} LM's consolidated/ folder")
    p.add_argument(
        "--out", type=Path, default=CHECKOUT / "moshi" / "small", help="where to write (default: %(default)s)"
    )
    p.add_argument(
        "--exact-codes",
        action="store_true",
        help="keep Mimi's encoder in float32 (+5.5 MB): the codes the LMs hear are the checkpoint's",
    )
    p.add_argument("--commit", help="the code's commit to record (default: this checkout's HEAD)")
    p.add_argument(
        "--context", action="append", default=[], metavar="KIND=FRAMES", help="a model's context (repeatable)"
    )
    p.add_argument(
        "--temp",
        action="append",
        default=[],
        metavar="KIND=T",
        help="a model's audio temperature (repeatable)",
    )
    p.add_argument("--ear", action="store_true", help="the dialogue hears through the shipped stt")
    args = p.parse_args(argv)
    lms = {kind: getattr(args, kind) for kind in KINDS if getattr(args, kind) is not None}
    contexts, temps = {}, {}
    for item in args.context:
        kind, _, frames = item.partition("=")
        if not frames.isdigit():
            p.error(f"--context: expected KIND=FRAMES (stt=40), got {item!r}")
        contexts[kind] = int(frames)
    for item in args.temp:
        kind, _, temp = item.partition("=")
        try:
            temps[kind] = float(temp)
        except ValueError:
            p.error(f"--temp: expected KIND=TEMPERATURE (dialogue=0.3), got {item!r}")
    settings = Settings(contexts, temps, args.ear)
    if args.replace and (args.tokenizer or args.exact_codes):
        p.error("--replace keeps the shipped tokenizer and encoder: give language models or a --codec")
    if args.replace and bool(lms) == bool(args.codec):
        p.error("--replace: give language models, or a --codec to take the decoder of (not both)")
    if not args.replace and (args.codec is None or args.tokenizer is None):
        p.error("--codec and --tokenizer are required (or --replace)")
    commit = args.commit or _head()
    try:
        if args.replace:
            if args.codec:
                manifest = replace_decoder(args.out, args.codec, commit)
            else:
                manifest = replace(args.out, lms, commit, settings)
        else:
            float32 = FLOAT32 + ENCODER if args.exact_codes else FLOAT32
            manifest = ship(args.out, args.codec, args.tokenizer, lms, commit, float32, settings)
    except (FileNotFoundError, ValueError) as e:
        print(f"ship: error: {e}", file=sys.stderr)
        return 1
    for name in [*lms] if args.replace and not args.codec else ["codec", *lms]:
        entry = manifest[name]
        print(f"{name}: {entry['parameters'] / 1e6:.2f} M parameters, {entry['bytes'] / 1e6:.1f} MB, "
              f"step {entry['step']}, sha256 {entry['sha256'][:12]}")  # fmt: skip
    print(f"wrote {args.out} (commit {commit})")
    return 0


def _head() -> str | None:
    r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=CHECKOUT, capture_output=True, text=True)
    return r.stdout.strip() or None


if __name__ == "__main__":
    sys.exit(main())
