"""moshi data build OUT_DIR: the synthetic training corpus (dialogues, users' and Moshi's
utterances, held-out voices and sentences) from one seed; moshi data merge OUT_DIR CORPUS...:
several builds as one corpus (manifests only, the audio stays where it is)."""

from __future__ import annotations

import argparse
import json

from ..data import merge
from ..data.build import build_corpus
from ..data.plan import SPLITS
from ..data.synth import FAST_MOSHI_VOICE, MOSHI_VOICE, USER_VOICES, available, installed
from ..data.tokenizer import write_tokenizer
from .common import UserError
from .options import HelpFormatter

PERSONAS = {"festival-slt-hts": MOSHI_VOICE, "flite-slt": FAST_MOSHI_VOICE}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data", help="build the synthetic training corpus", description=__doc__,
        formatter_class=HelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="synthesise the whole corpus into OUT_DIR", description=__doc__,
                           formatter_class=HelpFormatter)  # fmt: skip
    build.add_argument("out_dir", metavar="OUT_DIR")
    build.add_argument("--seed", type=int, default=0, help="the one seed of the whole corpus")
    build.add_argument("--dialogues", type=int, default=1500, help="stereo dialogues (train + held out)")
    build.add_argument("--utterances", type=int, default=3000, help="mono utterances in users' voices")
    build.add_argument(
        "--tts", type=int, help="mono utterances in Moshi's voice (when not given: half as many)"
    )
    build.add_argument("--heldout-fraction", type=float, default=0.1, help="share of each kind held out")
    build.add_argument(
        "--persona", choices=sorted(PERSONAS), default="festival-slt-hts", help="Moshi's voice"
    )
    build.add_argument("--workers", type=int, help="processes (when not given: one per core)")
    build.add_argument(
        "--split", choices=SPLITS,
        help="render this split alone (each split depends on the seed and counts only: --split heldout"
             " gives the full build's held-out files, what the benches read, in a fraction of the time)",
    )  # fmt: skip
    build.add_argument("--force", action="store_true", help="rebuild into a non-empty OUT_DIR")
    build.add_argument(
        "--text-only", action="store_true",
        help="write each file's words and times alone (no audio): text-only items for a dialogue model",
    )  # fmt: skip
    build.set_defaults(run=run)
    merging = sub.add_parser("merge", help="several builds as one corpus (manifests of absolute paths)",
                           description=merge.__doc__, formatter_class=HelpFormatter)  # fmt: skip
    merging.add_argument("out_dir", metavar="OUT_DIR")
    merging.add_argument(
        "corpora", metavar="CORPUS", nargs="+", help="builds of `moshi data build`, in order"
    )
    merging.add_argument("--force", action="store_true", help="rewrite a non-empty OUT_DIR")
    merging.set_defaults(run=run_merge)
    tok = sub.add_parser("tokenizer", help="the text tokenizer of a built corpus (one piece per word)",
                         description=write_tokenizer.__doc__, formatter_class=HelpFormatter)  # fmt: skip
    tok.add_argument("corpus", metavar="CORPUS", help="a corpus made by `moshi data build`")
    tok.add_argument("--out", help="where to write it (when not given: CORPUS/tokenizer.model)")
    tok.set_defaults(run=run_tokenizer)


def run(args: argparse.Namespace) -> int:
    missing = [e for e in ("espeak", "flite", "festival") if not available(e)]
    if missing:
        raise UserError(f"missing synthesisers: {', '.join(missing)} (./install.sh installs them as root)")
    voices = [v.id for v in (*USER_VOICES, PERSONAS[args.persona]) if not installed(v)]
    if voices:
        raise UserError(f"missing voices: {', '.join(voices)} (./install.sh installs them as root)")
    try:
        summary = build_corpus(
            args.out_dir, seed=args.seed, n_dialogues=args.dialogues, n_utterances=args.utterances,
            n_tts=args.tts, heldout_fraction=args.heldout_fraction, moshi_voice=PERSONAS[args.persona],
            workers=args.workers, force=args.force, text_only=args.text_only,
            splits=(args.split,) if args.split else SPLITS,
        )  # fmt: skip
    except (FileExistsError, ValueError) as e:
        raise UserError(str(e)) from e
    print(json.dumps({"out_dir": args.out_dir, "hours": summary["total_hours"]}))
    return 0


def run_tokenizer(args: argparse.Namespace) -> int:
    try:
        path = write_tokenizer(args.corpus, args.out)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from e
    print(json.dumps({"tokenizer": str(path)}))
    return 0


def run_merge(args: argparse.Namespace) -> int:
    try:
        summary = merge.merge_corpora(args.out_dir, args.corpora, force=args.force)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from e
    mono = summary["hours"]["train/mono.jsonl"]
    print(json.dumps({"out_dir": args.out_dir, "hours": summary["total_hours"], "mono_train_hours": mono}))
    return 0
