"""Tiny models of every kind (dialogue, speech-to-text, text-to-speech), to try each command
without a GPU or a download. They have the released models' structure at toy sizes
(the configs of the test fixtures, shipped here) and random weights made from a fixed
seed, so they run every code path, in milliseconds a step, and babble.

    write_tiny_models(Path("tiny"))   # tiny/dialogue/config.json, tiny/stt/..., tiny/tts/...

Each folder is laid out as Kyutai's hub repos are: a `config.json` naming the weights,
Mimi and tokenizer files (shared, one folder up), so `--config tiny/KIND/config.json`
selects it. The text-to-speech folder also holds a voice, `voice.safetensors`.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor

from ..codec import Mimi, MimiConfig
from ..lm import KyutaiConfig, LMModel

DATA = Path(__file__).parent
KINDS = ("dialogue", "stt", "tts")  # each: DATA/<kind>.json, an LM config in Kyutai's format
SEED = 1234
VOICE_FILE = "voice.safetensors"  # in the text-to-speech folder
VOICE_FRAMES = 10  # the voice's length, in Mimi latent frames
OUTPUT_GAIN = 0.1  # on Mimi's last layer: random weights make loud noise (RMS ~0.4, clipping)


def write_tiny_models(root: Path) -> dict[str, Path]:
    """Write the tiny models under `root` (created if needed; files there are overwritten);
    returns each kind's `config.json`. Same seed, same weights (on one torch version)."""
    root.mkdir(parents=True, exist_ok=True)
    mimi_cfg = json.loads((DATA / "mimi.json").read_text())
    (root / "mimi_config.json").write_text(json.dumps(mimi_cfg, indent=1) + "\n")
    shutil.copy(DATA / "tokenizer.model", root / "tokenizer.model")
    gen = torch.Generator().manual_seed(SEED)
    codec = MimiConfig.from_kyutai(mimi_cfg)
    mimi = Mimi(codec, num_codebooks=codec.total_codebooks)  # all of them (speech-to-text reads 32)
    mimi_state = random_state(mimi.state_dict(), gen)
    last = max(int(k.split(".")[2]) for k in mimi_state if k.startswith("decoder.model."))
    for key in (f"decoder.model.{last}.conv.weight", f"decoder.model.{last}.conv.bias"):
        mimi_state[key] *= OUTPUT_GAIN
    save_file(mimi_state, str(root / "mimi.safetensors"))
    configs = {}
    for kind in KINDS:
        folder = root / kind
        folder.mkdir(exist_ok=True)
        config = json.loads((DATA / f"{kind}.json").read_text())
        lm = LMModel(KyutaiConfig.parse(config).lm)
        save_file(random_state(lm.state_dict(), gen), str(folder / "model.safetensors"))
        config |= dict(
            moshi_name="model.safetensors",
            mimi_name="../mimi.safetensors",
            mimi_config_name="../mimi_config.json",
            tokenizer_name="../tokenizer.model",
        )
        (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
        if "speaker_wavs" in config.get("conditioners", {}):
            dim = config["conditioners"]["speaker_wavs"]["tensor"]["dim"]
            voice = torch.randn(1, dim, VOICE_FRAMES, generator=gen)
            save_file({"speaker_wavs": voice}, str(folder / VOICE_FILE))
        configs[kind] = folder / "config.json"
    return configs


def random_state(state: dict[str, Tensor], gen: torch.Generator) -> dict[str, Tensor]:
    """Random values of a sensible scale for each tensor of a state dict, by its role:
    norms and codebook counts 1, layer scales 0.1, embeddings N(0, 1), matrices
    N(0, 1/fan_in), other vectors N(0, 0.02)."""
    out = {}
    for name, value in state.items():
        shape = value.shape
        if name.endswith(("alpha", "cluster_usage", "_initialized")) or (
            ".norm" in name and name.endswith(".weight")
        ):
            t = torch.ones(shape)
        elif ".norm" in name and name.endswith(".bias"):
            t = torch.zeros(shape)
        elif "layer_scale" in name:
            t = torch.full(shape, 0.1)
        elif "emb" in name:
            t = torch.randn(shape, generator=gen)
        elif len(shape) >= 2:
            t = torch.randn(shape, generator=gen) / math.sqrt(value.numel() // shape[0])
        else:
            t = torch.randn(shape, generator=gen) * 0.02
        out[name] = t.to(value.dtype).contiguous()
    return out
