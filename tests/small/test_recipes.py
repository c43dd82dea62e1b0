"""Every recipe of the small family parses, and the committed files it starts from are there
(the corpus and runs are not committed: only paths inside the checkout's tracked folders are
checked)."""

import json
from pathlib import Path

import pytest

from moshi.train.codec import CodecTrainConfig
from moshi.train.config import TrainConfig, read_yaml

REPO = Path(__file__).parents[2]
RECIPES = sorted((REPO / "recipes" / "small").glob("*.yaml"))
COMMITTED = ("recipes/", "moshi/")  # the rest (corpus*, runs/) is built by the recipes


def committed_paths(paths: list[str | None]) -> list[str]:
    return [p for p in paths if p is not None and p.startswith(COMMITTED)]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_parses_and_its_committed_inputs_exist(recipe):
    if "task" in read_yaml(recipe):  # a language model's
        cfg = TrainConfig.load(recipe)
        config = cfg.model.config or cfg.moshi_paths.config_path  # a fresh model, or a run's
        assert config is not None
        p = cfg.moshi_paths
        paths = [config, cfg.model.init_from, p.moshi_path, p.mimi_path, p.mimi_config_path]
        if committed_paths([config]):
            model = json.loads((REPO / config).read_text())
            paths += [model.get("mimi_name"), model.get("mimi_config_name")]
    else:
        codec = CodecTrainConfig.load(recipe)
        codec.model.architecture()
        paths = [codec.model.weights, codec.model.config]
    missing = [p for p in committed_paths(paths) if not (REPO / p).exists()]
    assert not missing, missing
