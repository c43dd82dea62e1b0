"""Writing the shipped family from training checkpoints (`recipes/small/ship.py` is its
command): the codec, each language model given, and the tokenizer, into one folder laid out
as moshi/small/ describes, weights in bfloat16, with a `manifest.json`:

    {"dtype": "bfloat16", "float32": [...], "commit": ..., "tokenizer": {"file", "sha256"},
     "codec": {"weights", "config", "sha256", "parameters", "bytes", "step", "source"},
     "stt": {...the same...}, ...}

`float32`: the weights kept in float32 (key prefixes, see FLOAT32); `sha256`: the shipped
weights file's; `parameters`: the numbers in it; `step`: the training step read from the
source's path (`checkpoint_000500/consolidated`, `codec-008000`; null if none); `commit`:
the code's commit the caller names (an entry's own `commit`, when it has one, is the code's
that wrote that entry: `replace`, `replace_decoder`). Kinds not given are absent (a previous one is removed).
`Settings` change the shipped configs from their checkpoints': `contexts` (kind -> frames)
a model's `context` (a model trained on crops of N frames attends well over at most about N
past frames: speech-to-text trained on 4 s crops with a context of 250 wrote nonsense after
4 s of any input); `temps` (kind -> temperature) its audio's sampling temperature
(`lm_gen_config.temp`, what `serve`, `chat`, `infer` and `speak` use); `ear`: the dialogue
model hears through the shipped speech-to-text model (`dialogue_config.ear = "../stt"`,
moshi/stt/ear.py: it writes down the user's words for it).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..codec import MIMI_CONFIG, MIMI_WEIGHTS, MimiConfig
from ..lm import KyutaiConfig
from ..lm.config import EAR, USER_TEXT_DELAY
from ..lm.loading import FLOAT32_PREFIXES
from . import CONFIG, KINDS, MANIFEST, MODEL_TYPES, model_folder

DTYPE = torch.bfloat16
TOKENIZER, LM_WEIGHTS = "tokenizer.model", "model.safetensors"
# Kept in float32: the LM's conditioners (as its loader keeps them), and Mimi's codebooks, as
# the codes the LMs hear come from a nearest-codebook search. On tests/fixtures/hello_24k.wav
# with mimi-small (step 8000), against its float32 weights: all in bfloat16, codebooks 1-8
# keep 99, 98, 97, 93, 92, 78, 69, 62 % of their codes; with float32 codebooks (+0.4 MB),
# 100, 100, 98, 97, 94, 84, 83, 76 %; with the whole encoder in float32 (`FLOAT32 + ENCODER`,
# +5.5 MB), all of them.
FLOAT32 = (*FLOAT32_PREFIXES, "quantizer.")
ENCODER = ("encoder.", "encoder_transformer.", "downsample.")
STEP = re.compile(r"(?:checkpoint_|-)(\d+)$")  # checkpoint_000500, codec-008000


@dataclass(frozen=True)
class Settings:
    """How the shipped configs differ from their checkpoints' (see the module docstring)."""

    contexts: dict[str, int] = field(default_factory=dict)  # kind -> attention context, frames
    temps: dict[str, float] = field(default_factory=dict)  # kind -> lm_gen_config.temp
    ear: bool = False  # the dialogue model hears through the shipped speech-to-text model


def ship(
    out: Path,
    codec: Path,
    tokenizer: Path,
    lms: dict[str, Path],
    commit: str | None = None,
    float32: tuple[str, ...] = FLOAT32,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Write the family into `out` (created if needed); returns the manifest written.

    codec: a folder holding `mimi.safetensors` and `mimi_config.json` (Kyutai's format).
    lms: kind -> a `moshi train lm` checkpoint's `consolidated/` folder (`config.json`
        naming its full weights; LoRA adapters must be merged first).
    float32: the weights kept in float32 (names' prefixes, in the files' key names).
    """
    _check_kinds(lms)
    for path in (codec / MIMI_WEIGHTS, codec / MIMI_CONFIG, tokenizer):
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
    MimiConfig.from_kyutai(json.loads((codec / MIMI_CONFIG).read_text()))  # refuses a bad config
    configs = _lm_configs(lms, settings or Settings(), "stt" in lms)

    out.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        shutil.rmtree(model_folder(kind, out), ignore_errors=True)
    shutil.copyfile(codec / MIMI_CONFIG, out / MIMI_CONFIG)
    shutil.copyfile(tokenizer, out / TOKENIZER)
    manifest: dict[str, Any] = {
        "dtype": str(DTYPE).removeprefix("torch."),
        "float32": list(float32),
        "commit": commit,
        "tokenizer": {"file": TOKENIZER, "sha256": sha256(out / TOKENIZER)},
        "codec": {
            "weights": MIMI_WEIGHTS,
            "config": MIMI_CONFIG,
            **_write_weights(load_file(str(codec / MIMI_WEIGHTS)), out / MIMI_WEIGHTS, codec, float32),
        },
    }
    for kind, folder in lms.items():
        manifest[kind] = _write_lm(out, kind, folder, configs[kind], float32)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def replace(
    out: Path,
    lms: dict[str, Path],
    commit: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Replace some language models of the family shipped in `out`, keeping its codec, its
    tokenizer and the other kinds as they are; returns the manifest written. Each replaced
    entry records its own `commit` (the manifest's top-level one stays the others')."""
    if not (out / MANIFEST).is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {out}: ship the whole family first")
    if not lms:
        raise ValueError(f"give a model to replace (kinds: {', '.join(KINDS)})")
    _check_kinds(lms)
    manifest = json.loads((out / MANIFEST).read_text())
    configs = _lm_configs(lms, settings or Settings(), "stt" in lms or "stt" in manifest)
    for kind, folder in lms.items():
        shutil.rmtree(model_folder(kind, out), ignore_errors=True)
        manifest[kind] = _write_lm(out, kind, folder, configs[kind], tuple(manifest["float32"])) | {
            "commit": commit
        }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def replace_decoder(out: Path, codec: Path, commit: str | None = None) -> dict[str, Any]:
    """Replace the decoder of the codec shipped in `out` by `codec`'s (a folder as `ship`
    takes), keeping the shipped encoder and quantizer: the codes every shipped language model
    was trained on. `codec` must have the shipped config and, in the shipped dtypes, the
    shipped encoder and quantizer bit for bit (a decoder trained alone on the shipped codec:
    `model.decoder_only`); else ValueError. Returns the manifest written; the codec's entry
    records the new weights and `commit`, and `encoder_source` the one they came from."""
    if not (out / MANIFEST).is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {out}: ship the whole family first")
    for path in (codec / MIMI_WEIGHTS, codec / MIMI_CONFIG):
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
    if json.loads((codec / MIMI_CONFIG).read_text()) != json.loads((out / MIMI_CONFIG).read_text()):
        raise ValueError(f"{codec / MIMI_CONFIG} differs from the shipped {MIMI_CONFIG}: not the same codec")
    manifest = json.loads((out / MANIFEST).read_text())
    shipped, new = load_file(str(out / MIMI_WEIGHTS)), load_file(str(codec / MIMI_WEIGHTS))
    if set(new) != set(shipped):
        raise ValueError(f"{codec / MIMI_WEIGHTS} has other weights than the shipped codec's")
    kept = (*ENCODER, "quantizer.")
    for name, value in shipped.items():
        if name.startswith(kept) and not torch.equal(new[name].to(value.dtype), value):
            raise ValueError(
                f"{codec / MIMI_WEIGHTS}: {name} differs from the shipped codec's: only a decoder "
                "trained on the shipped encoder and quantizer keeps the language models' codes"
            )
    state = {k: shipped[k] if k.startswith(kept) else v for k, v in new.items()}
    entry = _write_weights(state, out / MIMI_WEIGHTS, codec, tuple(manifest["float32"]))
    manifest["codec"] = (
        manifest["codec"]
        | entry
        | {
            "commit": commit,
            "encoder_source": manifest["codec"].get("encoder_source", manifest["codec"]["source"]),
        }
    )
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _write_lm(
    out: Path, kind: str, folder: Path, config: dict[str, Any], float32: tuple[str, ...]
) -> dict[str, Any]:
    """One language model's folder in `out`: its config naming the shared files one folder up,
    its weights; its manifest entry."""
    dst = model_folder(kind, out)
    dst.mkdir()
    data = config | {
        "moshi_name": LM_WEIGHTS,
        "mimi_name": f"../{MIMI_WEIGHTS}",
        "mimi_config_name": f"../{MIMI_CONFIG}",
        "tokenizer_name": f"../{TOKENIZER}",
    }
    (dst / CONFIG).write_text(json.dumps(data, indent=1) + "\n")
    weights = load_file(str(_beside(folder, config["moshi_name"])))
    return {
        "weights": f"{kind}/{LM_WEIGHTS}",
        "config": f"{kind}/{CONFIG}",
        **_write_weights(weights, dst / LM_WEIGHTS, folder, float32),
    }


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def training_step(source: Path) -> int | None:
    """The step in a checkpoint's path: `.../checkpoint_000500/consolidated` -> 500,
    `codec-008000` -> 8000; None when its name says none."""
    for part in reversed(source.resolve().parts[-2:]):
        m = STEP.search(part)
        if m:
            return int(m.group(1))
    return None


def _check_kinds(lms: dict[str, Path]) -> None:
    bad = sorted(set(lms) - set(KINDS))
    if bad:
        raise ValueError(f"kinds must be among {', '.join(KINDS)}, got {', '.join(bad)}")


def _lm_configs(lms: dict[str, Path], settings: Settings, stt_shipped: bool) -> dict[str, dict[str, Any]]:
    """Each model's checkpoint config, changed as `settings` say."""
    if settings.ear and not ("dialogue" in lms and stt_shipped):
        raise ValueError("an ear is the shipped speech-to-text model, for a dialogue model shipped with it")
    for what, values in (("context", settings.contexts), ("temperature", settings.temps)):
        extra = sorted(set(values) - set(lms))
        if extra:
            raise ValueError(f"a {what} for a model not shipped here: {', '.join(extra)}")
    for kind, frames in settings.contexts.items():
        if frames < 1:
            raise ValueError(f"{kind}'s context must be >= 1 frame, got {frames}")
    for kind, temp in settings.temps.items():
        if not temp >= 0:
            raise ValueError(f"{kind}'s temperature must be >= 0, got {temp}")
    configs = {kind: _lm_config(kind, folder) for kind, folder in lms.items()}
    for kind, frames in settings.contexts.items():
        configs[kind]["context"] = frames
    for kind, temp in settings.temps.items():
        configs[kind]["lm_gen_config"] = configs[kind].get("lm_gen_config", {}) | {"temp": temp}
    if settings.ear:
        dialogue = configs["dialogue"]
        if dialogue.get("dialogue_config", {}).get(USER_TEXT_DELAY) is None:
            raise ValueError(
                f"an ear writes down the user's words: the dialogue model's config has no {USER_TEXT_DELAY}"
            )
        dialogue["dialogue_config"] = dialogue["dialogue_config"] | {EAR: "../stt"}
    return configs


def _lm_config(kind: str, folder: Path) -> dict[str, Any]:
    path = folder / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG} in {folder} (give a checkpoint's consolidated/ folder)")
    data = json.loads(path.read_text())
    got = data.get("model_type", "moshi")
    if got != MODEL_TYPES[kind]:
        raise ValueError(f"{path}: a {kind} model has model_type {MODEL_TYPES[kind]!r}, got {got!r}")
    if data.get("lora"):
        raise ValueError(f"{path} holds LoRA adapters: ship full weights (save_adapters: false)")
    KyutaiConfig.parse(data)  # refuses what would not load
    if not _beside(folder, data.get("moshi_name", "")).is_file():
        raise FileNotFoundError(f"{path} names weights that are not there: {data.get('moshi_name')!r}")
    return data


def _beside(folder: Path, name: str) -> Path:
    return Path(name) if Path(name).is_absolute() else folder / name


def _write_weights(
    state: dict[str, Tensor], path: Path, source: Path, float32: tuple[str, ...]
) -> dict[str, Any]:
    """Save `state` with its float tensors in bfloat16, but those named by `float32`
    prefixes in float32; its manifest entry."""
    keep = lambda k, v: not v.is_floating_point() or k.startswith(float32)  # noqa: E731
    save_file({k: v if keep(k, v) else v.to(DTYPE) for k, v in state.items()}, str(path))
    return {
        "sha256": sha256(path),
        "parameters": sum(v.numel() for v in state.values()),
        "bytes": path.stat().st_size,
        "step": training_step(source),
        "source": str(source),
    }
