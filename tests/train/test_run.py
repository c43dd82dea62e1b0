"""The run loop on a tiny LM: exact resume, checkpoints in the release layout that the
loaders read, metrics lines, the kept-checkpoints count."""

import json

import torch

from moshi.lm.lora import has_lora
from moshi.models import ModelFiles
from moshi.train.config import TrainConfig
from moshi.train.distributed import Dist
from moshi.train.lm import build_model, main
from tests.support.fixtures import FIXTURES, config_of
from tests.support.train import PatternDataset, tiny_config, tiny_lm


def losses(run_dir) -> list[float]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x["loss"] for x in lines if x["split"] == "train"]


def train(config: dict, **kw):
    ds = PatternDataset(tiny_lm(), n=6, T=12)
    return main(TrainConfig.from_dict(config), progress=False, datasets=(ds, None), **kw)


def test_stop_and_resume_gives_the_same_losses(tmp_path):
    straight = train(tiny_config(tmp_path / "a"))
    assert straight.step == 6 and not straight.interrupted
    first = train(tiny_config(tmp_path / "b"), until_step=4)  # a checkpoint at 3 and at 4
    assert first.step == 4 and first.checkpoint is not None and first.checkpoint.name == "checkpoint_000004"
    resumed = train(tiny_config(tmp_path / "b"))
    assert resumed.step == 6
    a, b = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert len(a) == len(b) == 6 and a[-1] < a[0]
    torch.testing.assert_close(torch.tensor(b), torch.tensor(a), rtol=0, atol=1e-6)
    kept = sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir())
    assert kept == ["checkpoint_000003", "checkpoint_000006"]


def test_full_checkpoint_loads_as_a_model(tmp_path):
    result = train(tiny_config(tmp_path, max_steps=2, ckpt_freq=0))
    consolidated = result.checkpoint / "consolidated"
    files = ModelFiles.resolve(hf_repo=None, config=consolidated / "config.json")
    assert files.lm_weights == consolidated / "model.safetensors" and files.lora_weights is None
    lm = files.load_lm(dtype=torch.float32)
    trained = torch.load(result.checkpoint / "state" / "train_state.pt", weights_only=True)["task"]["model"]
    torch.testing.assert_close(lm.state_dict()["text_linear.weight"], trained["text_linear.weight"])


def test_lora_checkpoint_loads_with_and_without_fusing(tmp_path):
    config = tiny_config(
        tmp_path, max_steps=2, ckpt_freq=0, full_finetuning=False, lora={"enable": True, "rank": 2}
    )
    result = train(config)
    consolidated = result.checkpoint / "consolidated"
    assert sorted(p.name for p in consolidated.iterdir()) == ["config.json", "lora.safetensors"]
    files = ModelFiles.resolve(hf_repo=None, config=consolidated / "config.json")
    assert files.lora_weights == consolidated / "lora.safetensors"
    adapted = files.load_lm(dtype=torch.float32)
    fused = files.load_lm(dtype=torch.float32, fuse_lora=True)
    assert has_lora(adapted) and not has_lora(fused)
    codes = PatternDataset(adapted, n=2, T=8)[1][None]
    with torch.no_grad():
        torch.testing.assert_close(fused(codes).logits, adapted(codes).logits, rtol=0, atol=1e-5)


def test_the_codec_config_named_in_moshi_paths_wins(tmp_path):
    """`moshi_paths.mimi_config_path` names the codec beside `mimi_path`, over the LM config's
    mimi_config_name, whether the model loads weights or starts fresh from `model.config`."""
    codec = tmp_path / "codec.json"
    codec.write_bytes((FIXTURES / "mimi_tiny" / "config.json").read_bytes())
    lm_config = tmp_path / "lm.json"
    lm_config.write_text(json.dumps(config_of(FIXTURES / "moshi_lm_tiny", mimi_config_name="absent.json")))
    for model in [{}, {"model": {"config": str(lm_config)}}]:
        config = tiny_config(tmp_path / "run", **model)
        config["moshi_paths"] |= {"config_path": str(lm_config), "mimi_config_path": str(codec)}
        assert build_model(TrainConfig.from_dict(config), Dist()).mimi_config == codec
