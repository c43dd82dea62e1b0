"""`moshi train` / `python -m moshi.train` as a user meets them: Ctrl-C saves a checkpoint
and exits cleanly, bad configs get one line, `plot` writes a PNG."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from moshi.cli.main import main as moshi_main
from tests.support.train import tiny_config

REPO = Path(__file__).resolve().parents[2]

TRAIN_SCRIPT = """
import json, sys
sys.path.insert(0, {repo!r})
from moshi.train.config import TrainConfig
from moshi.train.lm import main
from tests.support.train import PatternDataset, tiny_lm
import torch
torch.set_num_threads(1)
config = TrainConfig.from_dict(json.loads({config!r}))
result = main(config, progress=False, datasets=(PatternDataset(tiny_lm(), n=6, T=12), None))
print(json.dumps({{"step": result.step, "interrupted": result.interrupted}}))
"""


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    config = tiny_config(tmp_path / "run", max_steps=100_000, ckpt_freq=0)
    script = TRAIN_SCRIPT.format(repo=str(REPO), config=json.dumps(config))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 2):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["interrupted"] and result["step"] >= 2
    step = result["step"]
    folder = tmp_path / "run" / "checkpoints" / f"checkpoint_{step:06d}"
    assert (folder / "state" / "DONE").is_file() and (folder / "consolidated" / "model.safetensors").is_file()


def test_bad_config_is_one_line(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump({**tiny_config(tmp_path / "run"), "optim": {"lr": "fast"}, "batchsize": 2})
    )
    assert moshi_main(["train", "lm", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "moshi train: error: unknown key config.batchsize", err
    path.write_text(yaml.safe_dump({**tiny_config(tmp_path / "run"), "optim": {"lr": "fast"}}))
    assert moshi_main(["train", "lm", str(path)]) == 1
    assert (
        capsys.readouterr().err.strip()
        == "moshi train: error: config.optim.lr: expected a number, got 'fast'"
    )
    path.write_text(yaml.safe_dump({**tiny_config(tmp_path / "run"), "text_loss_weight": 0}))
    assert moshi_main(["train", "lm", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "moshi train: error: config.text_loss_weight must be > 0, got 0.0"
    path.write_text(yaml.safe_dump({**tiny_config(tmp_path / "run"), "reply_weight": 10}))
    assert moshi_main(["train", "lm", str(path)]) == 1  # the tiny model does not write down the user
    err = capsys.readouterr().err.strip()
    assert err.startswith("moshi train: error: config.reply_weight 10.0 needs a dialogue model")
    # Options that would silently do nothing on the model's streams, refused before any data.
    # Speech-to-text makes no audio (dep_q 0); text-to-speech reads only the audio it makes.
    stt = tiny_config(tmp_path / "run", name="stt_lm_tiny", task="stt", own_audio=0.5)
    tts = tiny_config(tmp_path / "run", name="tts_lm_tiny", task="tts", input_dropout=0.1)
    for cfg, want in ((stt, "config.own_audio 0.5 needs"), (tts, "config.input_dropout 0.1 needs")):
        path.write_text(yaml.safe_dump(cfg))
        assert moshi_main(["train", "lm", str(path)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"moshi train: error: {want}") and "\n" not in err, err
    proc = subprocess.run(
        [sys.executable, "-m", "moshi.train", "lm", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "cannot read" in proc.stderr


def test_plot_writes_a_png(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    lines = [
        {
            "split": "train",
            "step": s,
            "loss": 8 / s,
            "text_loss": 4 / s,
            "semantic_loss": 3 / s,
            "acoustic_loss": 1 / s,
        }
        for s in range(1, 21)
    ] + [{"split": "eval", "step": 10, "loss": 1.0}, {"split": "eval", "step": 20, "loss": 0.6}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert moshi_main(["train", "plot", str(run)]) == 0
    png = run / "losses.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert moshi_main(["train", "plot", str(tmp_path)]) == 1
    assert "has no metrics.jsonl" in capsys.readouterr().err
