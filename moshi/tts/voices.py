"""Voices: the speaker embeddings a TTS model is conditioned on.

A voice file is a `.safetensors` holding `speaker_wavs` [1, D, T] (for the released model:
D = 512 Mimi latents of a ~10 s sample). Kyutai publishes voices in `kyutai/tts-voices`,
one file per voice and model: the voice `expresso/ex03-ex01_happy_001_channel1_334s.wav`
for a model whose `model_id` is {sig: 1e68beda, epoch: 240} is the file
`expresso/ex03-ex01_happy_001_channel1_334s.wav.1e68beda@240.safetensors`.

Up to `MAX_SPEAKERS` voices condition one script (voice 1 = main speaker, voice 2 = the
other one): they are laid side by side into one sequence [MAX_SPEAKERS * T, D], with a
mask that leaves the missing speakers' slots empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..checkpoint import read_state_dict
from ..hub import hf_download, looks_local
from ..lm.conditioners import TensorCondition

VOICE_REPO = "kyutai/tts-voices"
VOICE_KEY = "speaker_wavs"
MAX_SPEAKERS = 5


def voice_suffix(model_id: dict[str, object]) -> str:
    """`.{sig}@{epoch}.safetensors` from a config's `model_id` ("" without one)."""
    if not model_id:
        return ""
    if "sig" not in model_id or "epoch" not in model_id:
        raise ValueError(f"config.model_id needs 'sig' and 'epoch', got {sorted(model_id)}")
    return f".{model_id['sig']}@{model_id['epoch']}.safetensors"


def resolve_voice(spec: str | Path, suffix: str, repo: str = VOICE_REPO) -> Path:
    """A local voice file, or a voice name of `repo` (with the model's `suffix`)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    name = str(spec)
    if path.is_absolute() or name.startswith(".") or looks_local(name):
        raise FileNotFoundError(f"no such voice file: {spec}")
    filename = name if name.endswith(".safetensors") else name + suffix
    if not filename.endswith(".safetensors"):
        raise FileNotFoundError(
            f"no voice {name!r}: not a local file, and this model has no model_id to name voices of {repo}"
        )
    try:
        return hf_download(repo, filename)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"no voice {name!r}: not a local file, and not in {repo} ({e})") from e


def load_voice(path: Path, dim: int) -> torch.Tensor:
    """The voice of a file: [T, dim] float32."""
    state = read_state_dict(path)
    if VOICE_KEY not in state:
        raise ValueError(
            f"{path} is not a voice file: it has no {VOICE_KEY!r} tensor (found {sorted(state)})"
        )
    wav = state[VOICE_KEY]
    if wav.dim() != 3 or wav.shape[0] != 1 or wav.shape[1] != dim or wav.shape[2] < 1:
        raise ValueError(f"{path}: {VOICE_KEY} must have shape [1, {dim}, T], got {list(wav.shape)}")
    return wav[0].T.float()


def speakers_condition(voices: Sequence[torch.Tensor]) -> TensorCondition:
    """Voices [T, D] each (same T) -> the `speaker_wavs` condition [MAX_SPEAKERS * T, D]."""
    if not 1 <= len(voices) <= MAX_SPEAKERS:
        raise ValueError(f"give 1 to {MAX_SPEAKERS} voices, got {len(voices)}")
    T, D = voices[0].shape
    if any(v.shape != (T, D) for v in voices):
        raise ValueError(f"voices must all have the same length, got {[v.shape[0] for v in voices]}")
    data = torch.zeros(MAX_SPEAKERS * T, D)
    mask = torch.zeros(MAX_SPEAKERS * T, dtype=torch.bool)
    for i, v in enumerate(voices):
        data[i * T : (i + 1) * T] = v
        mask[i * T : (i + 1) * T] = True
    return TensorCondition(data, mask)
