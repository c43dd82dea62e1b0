"""recipes/small/ship.py (moshi.small.ship): checkpoints in, a package folder out, in bfloat16
with a manifest whose hashes match, that loads as a model folder; re-running it rewrites it."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from moshi.models import ModelFiles
from moshi.small import shipped_kinds
from moshi.small.ship import ENCODER, FLOAT32, Settings, replace, replace_decoder, sha256, ship, training_step
from moshi.tiny import DATA, write_tiny_models

RECIPE = Path(__file__).parents[2] / "recipes" / "small" / "ship.py"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Tiny models laid out as training writes them: a codec folder and `consolidated/` folders."""
    root = tmp_path_factory.mktemp("checkpoints")
    configs = write_tiny_models(root / "tiny")
    out = {"codec": root / "codec-000300", "tokenizer": DATA / "tokenizer.model"}
    out["codec"].mkdir()
    for name in ("mimi.safetensors", "mimi_config.json"):
        shutil.copy(root / "tiny" / name, out["codec"] / name)
    for kind in ("stt", "dialogue"):
        out[kind] = root / kind / "checkpoints" / "checkpoint_000020" / "consolidated"
        shutil.copytree(configs[kind].parent, out[kind])
    return out


def _recipe():
    spec = importlib.util.spec_from_file_location("ship_recipe", RECIPE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_round_trip(checkpoints, tmp_path, capsys):
    out = tmp_path / "small"
    args = ["--codec", checkpoints["codec"], "--tokenizer", checkpoints["tokenizer"], "--out", out]
    assert _recipe().main([str(a) for a in [*args, "--stt", checkpoints["stt"], "--commit", "abc"]]) == 0
    assert "stt: " in capsys.readouterr().out
    assert shipped_kinds(out) == ("stt",)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["commit"] == "abc" and manifest["float32"] == list(FLOAT32)
    for name in ("codec", "stt"):
        assert manifest[name]["sha256"] == sha256(out / manifest[name]["weights"])
    assert manifest["codec"]["step"] == 300 and manifest["stt"]["step"] == 20
    assert manifest["tokenizer"]["sha256"] == sha256(checkpoints["tokenizer"])
    assert json.loads((out / "stt" / "config.json").read_text())["mimi_name"] == "../mimi.safetensors"

    original = load_file(checkpoints["stt"] / "model.safetensors")
    shipped = load_file(out / "stt" / "model.safetensors")
    assert {v.dtype for v in shipped.values()} == {torch.bfloat16}
    assert manifest["stt"]["parameters"] == sum(v.numel() for v in original.values())
    codec = load_file(out / "mimi.safetensors")
    assert {k for k, v in codec.items() if v.dtype == torch.float32} == {
        k for k, v in codec.items() if k.startswith("quantizer.") and v.is_floating_point()
    }

    files = ModelFiles.resolve(str(out / "stt"))
    lm = files.load_lm(dtype=torch.float32)
    for name, value in lm.state_dict().items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, original[name], rtol=1 / 128, atol=1e-6)
    assert files.load_mimi().encode(torch.zeros(1, 1, 1920)).shape == (1, 32, 1)  # all of tiny's codebooks
    assert files.load_tokenizer().vocab_size == 100


def test_rerun_replaces_the_family(checkpoints, tmp_path):
    out = tmp_path / "small"
    common = dict(codec=checkpoints["codec"], tokenizer=checkpoints["tokenizer"])
    ship(out, lms={"stt": checkpoints["stt"]}, **common)
    manifest = ship(out, lms={"dialogue": checkpoints["dialogue"]}, float32=FLOAT32 + ENCODER, **common)
    assert shipped_kinds(out) == ("dialogue",) and "stt" not in manifest
    codec = {k: v for k, v in load_file(out / "mimi.safetensors").items() if v.is_floating_point()}
    assert any(k.startswith("encoder_transformer.") for k in codec)
    assert all((v.dtype == torch.float32) == k.startswith(FLOAT32 + ENCODER) for k, v in codec.items())


def test_a_model_of_another_kind_is_refused(checkpoints, tmp_path):
    with pytest.raises(ValueError, match=r"tts model has model_type 'tts', got 'stt'"):
        ship(tmp_path, checkpoints["codec"], checkpoints["tokenizer"], {"tts": checkpoints["stt"]})
    assert not (tmp_path / "manifest.json").exists()


def test_training_step():
    assert training_step(Path("runs/x/checkpoints/checkpoint_000500/consolidated")) == 500
    assert training_step(Path("recipes/small/checkpoints/codec-008000")) == 8000
    assert training_step(Path("somewhere/else")) is None


def test_replace_swaps_one_model_and_keeps_the_rest(checkpoints, tmp_path, capsys):
    out = tmp_path / "small"
    ship(out, checkpoints["codec"], checkpoints["tokenizer"], {"stt": checkpoints["stt"]}, commit="old")
    before = json.loads((out / "manifest.json").read_text())
    args = ["--replace", "--dialogue", str(checkpoints["dialogue"]), "--out", str(out), "--commit", "new"]
    assert _recipe().main(args) == 0
    assert "dialogue: " in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert shipped_kinds(out) == ("dialogue", "stt")
    assert {k: manifest[k] for k in before} == before  # the codec, tokenizer and stt untouched
    assert manifest["dialogue"]["commit"] == "new" and manifest["dialogue"]["step"] == 20
    assert manifest["dialogue"]["sha256"] == sha256(out / "dialogue" / "model.safetensors")
    assert ModelFiles.resolve(str(out / "dialogue")).load_lm(dtype=torch.float32) is not None


def test_replace_needs_a_shipped_family_and_one_thing_to_replace(checkpoints, tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match=r"no manifest\.json in"):
        replace(tmp_path, {"stt": checkpoints["stt"]})
    with pytest.raises(FileNotFoundError, match=r"no manifest\.json in"):
        replace_decoder(tmp_path, checkpoints["codec"])
    for extra in (["--stt", str(checkpoints["stt"])], ["--tokenizer", str(checkpoints["tokenizer"])]):
        with pytest.raises(SystemExit):
            _recipe().main(["--replace", "--codec", str(checkpoints["codec"]), *extra])
    assert capsys.readouterr().err.count("error: --replace") == 2


def _decoder_trained_alone(checkpoints, folder: Path, change: str = "decoder.") -> Path:
    """The tiny codec with the weights under `change` moved, as decoder-only training moves them."""
    shutil.copytree(checkpoints["codec"], folder)
    state = load_file(folder / "mimi.safetensors")
    for name in state:
        if name.startswith(change) and state[name].is_floating_point():
            state[name] = state[name] + 0.5
    save_file(state, folder / "mimi.safetensors")
    return folder


def test_replace_decoder_keeps_the_codes(checkpoints, tmp_path, capsys):
    out = tmp_path / "small"
    ship(out, checkpoints["codec"], checkpoints["tokenizer"], {"stt": checkpoints["stt"]}, commit="old")
    before = json.loads((out / "manifest.json").read_text())
    old = ModelFiles.resolve(str(out / "stt")).load_mimi()
    codec = _decoder_trained_alone(checkpoints, tmp_path / "codec-000040")
    args = ["--replace", "--codec", str(codec), "--out", str(out), "--commit", "new"]
    assert _recipe().main(args) == 0
    assert "codec: " in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert {k: manifest[k] for k in before if k != "codec"} == {k: before[k] for k in before if k != "codec"}
    assert manifest["codec"]["step"] == 40 and manifest["codec"]["commit"] == "new"
    assert manifest["codec"]["encoder_source"] == before["codec"]["source"]
    assert manifest["codec"]["sha256"] == sha256(out / "mimi.safetensors")
    new = ModelFiles.resolve(str(out / "stt")).load_mimi()
    wav = torch.randn(1, 1, 1920 * 4, generator=torch.Generator().manual_seed(0)) * 0.1
    codes = old.encode(wav)
    assert torch.equal(new.encode(wav), codes)  # every language model hears the same codes
    assert not torch.allclose(new.decode(codes), old.decode(codes))  # with the new decoder's voice
    shipped = load_file(out / "mimi.safetensors")
    assert {k for k, v in shipped.items() if v.dtype == torch.float32} == {
        k for k, v in shipped.items() if k.startswith("quantizer.") and v.is_floating_point()
    }


@pytest.mark.parametrize("change", ["encoder.", "quantizer."])
def test_replace_decoder_refuses_another_encoder(checkpoints, tmp_path, change):
    out = tmp_path / "small"
    ship(out, checkpoints["codec"], checkpoints["tokenizer"], {"stt": checkpoints["stt"]})
    before = sha256(out / "mimi.safetensors")
    codec = _decoder_trained_alone(checkpoints, tmp_path / "codec", change)
    with pytest.raises(ValueError, match=f"{change}.* differs from the shipped codec's"):
        replace_decoder(out, codec)
    other = tmp_path / "other"
    shutil.copytree(checkpoints["codec"], other)
    (other / "mimi_config.json").write_text(json.dumps({"sample_rate": 16000}))
    with pytest.raises(ValueError, match=r"differs from the shipped mimi_config\.json"):
        replace_decoder(out, other)
    assert sha256(out / "mimi.safetensors") == before  # nothing written


def test_context_is_set_in_the_shipped_config(checkpoints, tmp_path, capsys):
    # a model trained on short crops attends over that many frames, whatever its checkpoint says
    out = tmp_path / "small"
    args = ["--codec", checkpoints["codec"], "--tokenizer", checkpoints["tokenizer"], "--out", out]
    ship_args = [str(a) for a in [*args, "--stt", checkpoints["stt"], "--context", "stt=7"]]
    assert _recipe().main(ship_args) == 0
    assert json.loads((out / "stt" / "config.json").read_text())["context"] == 7
    assert ModelFiles.resolve(str(out / "stt")).config.lm.context == 7
    assert json.loads((checkpoints["stt"] / "config.json").read_text())["context"] != 7  # source untouched
    replace(out, {"dialogue": checkpoints["dialogue"]}, settings=Settings(contexts={"dialogue": 9}))
    assert json.loads((out / "dialogue" / "config.json").read_text())["context"] == 9
    with pytest.raises(ValueError, match="a context for a model not shipped here: tts"):
        replace(out, {"stt": checkpoints["stt"]}, settings=Settings(contexts={"tts": 5}))
    again = ["--replace", "--out", out, "--dialogue", checkpoints["dialogue"], "--temp", "dialogue=0.3"]
    assert _recipe().main([str(a) for a in again]) == 0
    dialogue = ModelFiles.resolve(str(out / "dialogue")).config
    assert dialogue.lm_gen_config["temp"] == 0.3 and dialogue.lm.context != 9
    with pytest.raises(SystemExit):
        _recipe().main([*ship_args, "--temp", "stt=hot"])
    assert "expected KIND=TEMPERATURE (dialogue=0.3), got 'stt=hot'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _recipe().main([*ship_args[:-1], "stt=forty"])
    assert "expected KIND=FRAMES (stt=40), got 'stt=forty'" in capsys.readouterr().err


def test_the_dialogue_model_may_hear_through_the_shipped_speech_to_text_model(checkpoints, tmp_path, capsys):
    out, codec, tokenizer = tmp_path / "small", checkpoints["codec"], checkpoints["tokenizer"]
    with pytest.raises(ValueError, match="for a dialogue model shipped with it"):
        ship(out, codec, tokenizer, {"dialogue": checkpoints["dialogue"]}, settings=Settings(ear=True))
    # the tiny dialogue model does not write down the user's words: no ear for it
    args = ["--codec", codec, "--tokenizer", tokenizer, "--out", out, "--stt", checkpoints["stt"]]
    assert _recipe().main([str(a) for a in [*args, "--dialogue", checkpoints["dialogue"], "--ear"]]) == 1
    assert "the dialogue model's config has no user_text_delay_seconds" in capsys.readouterr().err
    heard = tmp_path / "heard"
    shutil.copytree(checkpoints["dialogue"], heard)
    config = json.loads((heard / "config.json").read_text())
    config["dialogue_config"] = {"user_text_delay_seconds": 0.48}
    (heard / "config.json").write_text(json.dumps(config))
    lms = {"stt": checkpoints["stt"], "dialogue": heard}
    ship(out, codec, tokenizer, lms, settings=Settings(ear=True))
    files = ModelFiles.resolve(str(out / "dialogue"))
    assert files.config.ear_name == "../stt" and files.ear is not None
    assert files.ear.lm_weights.resolve() == (out / "stt" / "model.safetensors").resolve()
    replace(out, {"dialogue": heard})  # replaced without --ear: it hears alone
    assert ModelFiles.resolve(str(out / "dialogue")).ear is None
    replace(out, {"dialogue": heard}, settings=Settings(ear=True))  # the shipped stt stays its ear
    assert ModelFiles.resolve(str(out / "dialogue")).ear is not None
