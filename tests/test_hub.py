"""Where files come from: a mistyped local path is never looked up on the hub, and a hub
file that is neither cached nor reachable is one clear error at once (no retries, no
fallback to another model's configuration)."""

import huggingface_hub
import pytest

from moshi.hub import locate, looks_local, try_hf_download
from moshi.models import ModelFiles
from moshi.tts.voices import resolve_voice
from tests.support.fixtures import fake_hub_cache


@pytest.fixture
def no_hub(monkeypatch):
    """Any request to the hub fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", refuse)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)


@pytest.mark.parametrize(
    "spec, local",
    [
        ("nothere.json", True),
        ("./nothere", True),
        ("~/w.safetensors", True),
        ("a/b.json", False),
        ("model", False),
    ],
)
def test_what_looks_like_a_local_file(spec, local):
    assert looks_local(spec) is local


@pytest.mark.parametrize("spec", ["nothere.json", "./nothere", "../w.safetensors"])
def test_a_mistyped_path_is_no_such_file_at_once(spec, no_hub):
    with pytest.raises(FileNotFoundError, match=f"no such file: {spec}"):
        locate(spec, "kyutai/stt-1b-en_fr", typed=True)
    with pytest.raises(FileNotFoundError, match="no such file"):
        ModelFiles.resolve("kyutai/stt-1b-en_fr", config=spec)
    with pytest.raises(FileNotFoundError, match="no such voice file"):
        resolve_voice(spec, ".abc@1.safetensors")


def test_a_configs_file_out_of_its_folder_is_local(tmp_path, no_hub, monkeypatch):
    # a model folder copied without the shared files one folder up (moshi/small's layout)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # (the working directory's parent holds no such file either)
    with pytest.raises(FileNotFoundError, match=r"no such file: .*sub/\.\./mimi\.safetensors"):
        locate("../mimi.safetensors", "kyutai/stt-1b-en_fr", base_dir=tmp_path / "sub")


def test_offline_and_not_cached_is_one_error_never_the_7b_config(tmp_path, monkeypatch, no_hub):
    fake_hub_cache(tmp_path, monkeypatch, "kyutai/stt-1b-en_fr", {})  # HF_HUB_OFFLINE, nothing cached
    with pytest.raises(FileNotFoundError, match=r"'config\.json'.*not in the local cache and HF_HUB_OFFLINE"):
        try_hf_download("kyutai/stt-1b-en_fr", "config.json")
    with pytest.raises(FileNotFoundError, match="kyutai/stt-1b-en_fr"):
        ModelFiles.resolve("kyutai/stt-1b-en_fr")


def test_no_network_is_one_error_at_once(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    asked = []

    def unreachable(url, **kwargs):
        asked.append(url)
        raise ConnectionError("[Errno -3] Temporary failure in name resolution")

    def refuse(*args, **kwargs):
        raise AssertionError("downloaded (with retries) after the hub was found unreachable")

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", unreachable)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    with pytest.raises(FileNotFoundError, match="not in the local cache and the hub cannot be reached"):
        ModelFiles.resolve("kyutai/stt-1b-en_fr")
    assert len(asked) == 1


def test_a_file_the_hub_said_is_absent_is_none(tmp_path, monkeypatch, no_hub):
    fake_hub_cache(tmp_path, monkeypatch, "kyutai/moshiko-pytorch-bf16", {}, absent=("config.json",))
    assert try_hf_download("kyutai/moshiko-pytorch-bf16", "config.json") is None
