"""The project's own small models (issue 13, trained by recipes/small/), shipped inside the
package so that commands work with no download: `--model small`, and the default of a
command whose kind is shipped on a machine without CUDA.

This folder is laid out as Kyutai's hub repos are: `KIND/config.json` (KIND: dialogue, stt,
tts; only the kinds shipped so far) names `KIND/model.safetensors` and the files the kinds
share one folder up (`mimi.safetensors`, `mimi_config.json`, `tokenizer.model`), so
`ModelFiles.resolve(model_folder("stt"))` reads it as it reads a hub repo. Weights are
stored in bfloat16 and load as float32 on a CPU as usual. `manifest.json` says where each
file came from (`recipes/small/ship.py` writes all of them: moshi/small/ship.py).
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).parent
KINDS = ("dialogue", "stt", "tts")  # the language models' kinds; the codec is shared
MODEL_TYPES = {"dialogue": "moshi", "stt": "stt", "tts": "tts"}  # each kind's Kyutai `model_type`
CONFIG = "config.json"
MANIFEST = "manifest.json"


def model_folder(kind: str, root: Path = FOLDER) -> Path:
    """The folder of one kind's model (a hub-repo layout), shipped or not."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return root / kind


def shipped_kinds(root: Path = FOLDER) -> tuple[str, ...]:
    """The kinds whose model is in `root` (the package's folder by default)."""
    return tuple(kind for kind in KINDS if (model_folder(kind, root) / CONFIG).is_file())
