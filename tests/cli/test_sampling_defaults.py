"""A model's `lm_gen_config` sets the sampling a conversation gets when nothing else does
(`moshi serve`'s defaults; `chat` and `infer` read it under their flags)."""

import pytest

from moshi.cli.options import model_sampling
from moshi.lm.config import KyutaiConfig
from moshi.lm.sampling import SamplingOptions
from tests.support.fixtures import FIXTURES, config_of


def test_the_models_lm_gen_config_fields_override_the_defaults():
    config = KyutaiConfig.parse(
        config_of(FIXTURES / "moshi_lm_tiny", lm_gen_config={"temp_text": 0.0, "top_k": 10, "cfg_coef": 2.0})
    )
    assert model_sampling(config) == SamplingOptions().replace(temp_text=0.0, top_k=10)
    assert model_sampling(KyutaiConfig.parse(config_of(FIXTURES / "moshi_lm_tiny"))) == SamplingOptions()


def test_a_bad_value_names_lm_gen_config():
    config = KyutaiConfig.parse(config_of(FIXTURES / "moshi_lm_tiny", lm_gen_config={"temp_text": -1}))
    with pytest.raises(ValueError, match=r"config\.lm_gen_config: temp_text must be a number"):
        model_sampling(config)
