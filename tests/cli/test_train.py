"""End to end on the tiny models, as issue 12 asks: stereo wavs -> `moshi train annotate`
(alignments by our speech-to-text) -> `moshi train lm` with moshi-finetune's YAML keys and
LoRA (in one process, and under `torchrun` in two) -> `moshi infer` with the adapters
(`--lora-weight`, and the checkpoint's config.json with `--fuse-lora`) -> a conversation
with `moshi serve --lora-weight`."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import soundfile as sf
import yaml

from moshi.stream.client import AudioEvent, Client
from tests.support.server import http_get

SR = 24000


def test_annotate_finetune_with_lora_and_talk(tmp_path, moshi, speech, dialogue_model, stt_model, wav):
    data = tmp_path / "data"
    data.mkdir()
    lines = []
    for i in range(2):
        left = speech[int((0.5 + i) * SR) : int((1.8 + i) * SR)]
        stereo = np.stack([left, left[::-1] * 0.5], axis=1)  # left: Moshi, right: the user
        sf.write(data / f"talk{i}.wav", stereo, SR)
        lines.append(json.dumps({"path": f"data/talk{i}.wav", "duration": 1.3}))
    manifest = tmp_path / "data.jsonl"
    manifest.write_text("\n".join(lines) + "\n")

    r = moshi("train", "annotate", manifest, *stt_model)
    assert r.code == 0, r.err
    assert "2 alignment files written" in r.out
    assert "alignments" in json.loads((data / "talk0.json").read_text())

    config = {  # moshi-finetune's keys, as its example files write them
        "data": {"train_data": str(manifest), "eval_data": "", "shuffle": True},
        "moshi_paths": {"hf_repo_id": None, "config_path": dialogue_model[1]},
        "full_finetuning": False,
        "lora": {"enable": True, "rank": 4, "scaling": 2.0, "ft_embed": False},
        "first_codebook_weight_multiplier": 100.0,
        "text_padding_weight": 0.5,
        "duration_sec": 1.0,
        "batch_size": 2,
        "num_microbatches": 1,
        "max_steps": 2,
        "gradient_checkpointing": True,
        "optim": {"lr": "2e-3", "weight_decay": 0.1, "pct_start": 0.05},
        "seed": 0,
        "log_freq": 1,
        "eval_freq": 0,
        "do_eval": False,
        "do_ckpt": True,
        "ckpt_freq": 2,
        "save_adapters": True,
        "run_dir": str(tmp_path / "run"),
        "cache_dir": str(tmp_path / "codes"),
        "wandb": {"project": None, "offline": False, "key": None, "run_name": None},
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    r = moshi("train", "lm", tmp_path / "train.yaml", "--no-progress")
    assert r.code == 0, r.err
    consolidated = tmp_path / "run" / "checkpoints" / "checkpoint_000002" / "consolidated"
    adapters = consolidated / "lora.safetensors"
    assert adapters.is_file()
    assert any(p.is_file() for p in (tmp_path / "codes").rglob("*"))  # the Mimi codes, cached

    for name, flags in (
        ("base+adapters", [*dialogue_model, "--lora-weight", adapters]),
        (
            "checkpoint",
            ["--config", consolidated / "config.json", "--device", "cpu", "--fuse-lora", "--int8"],
        ),
    ):
        out = tmp_path / name
        r = moshi("infer", wav(seconds=0.5), "-o", out, "--max-tail", "0.2", *flags)
        assert r.code == 0, r.err
        assert any(out.glob("*.wav")), name
    r = moshi(
        "infer",
        wav(seconds=0.5),
        "-o",
        tmp_path / "x.wav",
        *dialogue_model,
        "--lora-weight",
        adapters,
        "--int8",
    )
    assert r.code == 1 and "--fuse-lora" in r.err

    # The same YAML under torchrun, two processes (gloo): the checkpoint is the same layout.
    config["run_dir"] = str(tmp_path / "run2")
    (tmp_path / "train2.yaml").write_text(yaml.safe_dump(config))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    done = subprocess.run(
        [*torchrun, "-m", "moshi.train", "lm", str(tmp_path / "train2.yaml"), "--no-progress"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        tmp_path / "run2" / "checkpoints" / "checkpoint_000002" / "consolidated" / "lora.safetensors"
    ).is_file()

    # Talk to the fine-tuned model through the server.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve = [sys.executable, "-m", "moshi", "serve", *dialogue_model, "--lora-weight", str(adapters),
             "--port", str(port), "--static", "none", "--drain-seconds", "0"]  # fmt: skip
    server = subprocess.Popen(
        serve, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if http_get(port, "/api/health")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "moshi serve did not start"
            time.sleep(0.2)
        heard = asyncio.run(_converse(f"ws://127.0.0.1:{port}", speech[: 2 * SR]))
        assert heard >= 5
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err


async def _converse(url: str, pcm: np.ndarray) -> int:
    """Send `pcm` (paced in real time) and count the audio frames that come back."""
    heard = 0
    client = await Client.connect(url)
    sending = asyncio.create_task(client.send_pcm(pcm))
    async for event in client.events():
        heard += isinstance(event, AudioEvent)
        if sending.done():
            break
    await client.close()
    return heard
