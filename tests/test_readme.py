"""Every ```python block of README.md runs, as written, against the tiny test models.

A block is a whole program. It runs in a temporary working directory with a fake Hugging
Face cache in which each repo of `HUB` holds a tiny model of the same kind (so hub ids stay
as written), `kyutai/tts-voices` holds the tiny voice under each name of `VOICES`, and a
server of the tiny dialogue model listens when a block talks to one. `SUBSTITUTIONS` lists
the only changes made to the text: what a CPU test cannot do as written. A new block that
names another repo, voice or device needs one line in one of these tables, nothing else.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from moshi.lm import KyutaiConfig
from moshi.models import ModelFiles
from moshi.stream.engine import Engine
from moshi.tts import TTSConfig
from tests.support.fixtures import (
    MIMI_TINY,
    MOSHI_TINY,
    SPEECH,
    STT_CONFIG,
    STT_TINY,
    TTS_TINY,
    fake_hub_cache,
    tiny_model_dir,
)
from tests.support.server import ServerThread

README = Path(__file__).parents[1] / "README.md"
HUB = {  # a released repo a block names -> (the tiny model standing in for it, config.json additions)
    "kyutai/moshiko-pytorch-bf16": (MOSHI_TINY, {}),
    "kyutai/tts-1.6b-en_fr": (TTS_TINY, {}),
    "kyutai/stt-1b-en_fr": (STT_TINY, {"stt_config": STT_CONFIG}),
}
VOICES = [  # voices of kyutai/tts-voices a block names (each is the tiny TTS model's voice)
    "expresso/ex03-ex01_happy_001_channel1_334s.wav",
    "expresso/ex03-ex01_calm_001_channel2_1143s.wav",
]
NOT_RUN: dict[str, str] = {}  # a line of a block that cannot run yet -> why (skipped, visibly)
MANIFEST = "data.jsonl"  # a block reading it gets two stereo speech files listed there
SERVER_URL = "ws://127.0.0.1:8998"  # a block using it gets the tiny server (at its own port)
SUBSTITUTIONS = {  # README text -> what the test runs
    'device="cuda"': 'device="cpu"',
    "mimi = load_mimi()": "mimi = load_mimi({!r}, {!r})".format(
        str(MIMI_TINY / "weights.safetensors"), str(MIMI_TINY / "config.json")
    ),
}


def python_blocks() -> list[tuple[int, str]]:
    """(line number of the fence, code) of every ```python block; the code is padded with
    empty lines so that tracebacks give README.md's line numbers."""
    text = README.read_text()
    blocks = []
    for m in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.S | re.M):
        fence = text[: m.start()].count("\n") + 1
        blocks.append((fence, "\n" * fence + m.group(1)))
    return blocks


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """The fake hub cache (offline): `HUB`'s repos and `VOICES`; returns the models' folder."""
    for repo, (lm, extra) in HUB.items():
        config = tiny_model_dir(tmp_path / "models" / repo, lm, **extra)
        fake_hub_cache(tmp_path / "hub", monkeypatch, repo, {p.name: p for p in config.parent.iterdir()})
    suffix = TTSConfig.parse(KyutaiConfig.load(TTS_TINY / "config.json")).voice_suffix
    voices = {name + suffix: TTS_TINY / "voice.safetensors" for name in VOICES}
    fake_hub_cache(tmp_path / "hub", monkeypatch, "kyutai/tts-voices", voices)
    return tmp_path / "models"


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize(("fence", "code"), python_blocks(), ids=[f"line{n}" for n, _ in python_blocks()])
def test_readme_block_runs(fence, code, hub, tmp_path, monkeypatch):
    for line, why in NOT_RUN.items():
        if line in code:
            pytest.skip(why)
    for readme_text, ours in SUBSTITUTIONS.items():
        code = code.replace(readme_text, ours)
    monkeypatch.chdir(tmp_path)
    if f'"{MANIFEST}"' in code:
        _write_dialogues(tmp_path)
    if SERVER_URL not in code:
        exec(compile(code, str(README), "exec"), {"__name__": "__main__"})
        return
    files = ModelFiles.resolve(config=hub / "kyutai/moshiko-pytorch-bf16" / "config.json")
    engine = Engine(files.load_mimi(), files.load_lm(dtype=torch.float32), files.load_tokenizer())
    with ServerThread(engine) as server:
        exec(compile(code.replace(SERVER_URL, server.url), str(README), "exec"), {"__name__": "__main__"})


def _write_dialogues(folder: Path) -> None:
    """Two 1.5 s stereo files (left: Moshi, right: the user) and the manifest naming them."""
    speech, rate = sf.read(SPEECH, dtype="float32")
    lines = []
    for i in range(2):
        part = speech[int((0.5 + i) * rate) : int((2.0 + i) * rate)]
        sf.write(folder / f"talk{i}.wav", np.stack([part, part[::-1]], axis=1), rate)
        lines.append(json.dumps({"path": f"talk{i}.wav", "duration": len(part) / rate}))
    (folder / MANIFEST).write_text("\n".join(lines) + "\n")


def test_the_tables_are_used():
    """Each line of the tables serves a block (so they do not outlive what they adapt)."""
    code = "\n".join(c for _, c in python_blocks())
    assert len(python_blocks()) >= 4
    unused = [t for t in [*HUB, *VOICES, SERVER_URL, MANIFEST, *SUBSTITUTIONS, *NOT_RUN] if t not in code]
    assert not unused, f"not in any README block: {unused}"
