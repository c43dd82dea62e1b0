"""`moshi train cache`: the run's codes cache filled first by several processes, so that the
run itself encodes nothing; files already there are not encoded again; unreadable ones are
counted and left to the run to name."""

import json

import yaml

from moshi.cli.main import main as moshi_main
from moshi.train.config import TrainConfig
from moshi.train.distributed import Dist
from moshi.train.fill_cache import fill_cache
from moshi.train.lm import build_datasets, build_model
from tests.support.fixtures import FIXTURES
from tests.support.train import manifest, tiny_config


def _config(tmp_path, data) -> TrainConfig:
    paths = [data(f"f{i}", 0.5, seed=i) for i in range(3)]
    broken = tmp_path / "data" / "broken.wav"
    broken.write_bytes(b"not audio")
    config = tiny_config(tmp_path / "run", cache_dir=str(tmp_path / "cache"), task="dialogue")
    text_only = paths[0].with_suffix(".json")  # its words alone: nothing to encode
    config["data"] = {"train_data": str(manifest(tmp_path, [*paths, broken, text_only]))}
    config["moshi_paths"]["mimi_config_path"] = str(FIXTURES / "mimi_tiny" / "config.json")
    return TrainConfig.from_dict(config)


def test_two_processes_fill_what_the_run_reads(tmp_path, data):
    config = _config(tmp_path, data)
    filled = fill_cache(config, workers=2)
    assert (filled.files, filled.encoded, filled.unreadable) == (4, 3, 1)
    assert len(list(filled.folder.glob("*.safetensors"))) == 3
    train, _ = build_datasets(config, build_model(config, Dist()), Dist())
    assert train.cache.encoded == 0 and train.cache.folder == filled.folder and len(train.files) == 4
    again = fill_cache(config, workers=1)
    assert (again.encoded, again.unreadable) == (0, 1)


def test_the_command(tmp_path, data, capsys):
    config = _config(tmp_path, data)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert moshi_main(["train", "cache", str(path), "--workers", "1"]) == 0
    assert len(list((tmp_path / "cache").glob("*/*.safetensors"))) == 3
    assert moshi_main(["train", "cache", str(path), "--workers", "0"]) == 1
    assert capsys.readouterr().err.strip() == "moshi train: error: workers must be >= 1, got 0"


def test_channel_items_are_filled_as_the_run_reads_them(tmp_path, data):
    # a dialogue's channel as a text-to-speech item: the stereo file's codes, no silence after
    mono, stereo = data("mono", 0.5, 1), data("dialogue", 0.5, 2)
    lines = [
        {"path": "data/mono.wav", "duration": 0.5},
        {"path": "data/dialogue.wav", "duration": 0.5, "channel": 0},
    ]
    train_data = tmp_path / "tts.jsonl"
    train_data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    config = tiny_config(tmp_path / "run", "tts_lm_tiny", cache_dir=str(tmp_path / "cache"), task="tts")
    config["data"] = {"train_data": str(train_data)}
    config["moshi_paths"]["mimi_config_path"] = str(FIXTURES / "mimi_tiny" / "config.json")
    config = TrainConfig.from_dict(config)
    filled = fill_cache(config, workers=2)
    assert (filled.files, filled.encoded, filled.unreadable) == (2, 2, 0)
    train, _ = build_datasets(config, build_model(config, Dist()), Dist())
    assert [f.channel for f in train.files] == [None, 0] and not train.skipped
    assert train.cache.encoded == 0 and train.stereo_cache.encoded == 0
    assert {mono.name, stereo.name} == {f.path.name for f in train.files}
