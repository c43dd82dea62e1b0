"""The ear (moshi/stt/ear.py): inside a user's turn the dialogue model's text takes the
speech-to-text model's words, queued behind the model's own turn markers; paused items and
restarted ones keep their own state; a model folder's config names its ear."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from moshi.models import ModelFiles
from moshi.small import model_folder
from moshi.stt.ear import Ear

PAD, EPAD = 3, 0  # the small family's text padding and end of padding


@pytest.fixture(scope="module")
def parts():
    dialogue = ModelFiles.resolve(str(model_folder("dialogue")))
    stt = ModelFiles.resolve(str(model_folder("stt"))).load_lm(dtype=torch.float32)
    return dialogue, stt


def _write(ear: Ear, mine: list[int], heard: list[int], executing: list[bool] | None = None) -> list[int]:
    ear._heard = torch.tensor(heard)  # what `listen` leaves: the ear's token of this step
    ear._executing = None if executing is None else torch.tensor(executing)
    return ear.write(torch.tensor(mine)).tolist()


def test_the_ear_writes_the_users_words_between_the_models_markers(parts):
    files, stt = parts
    tok = files.load_tokenizer()
    ear = Ear(stt, files.config.lm, tok, cuda_graphs=False)
    eos, bos = tok.user_turn_id, tok.moshi_turn_id
    what, color, sun, it = (tok.encode(w)[0] for w in ("what", "color", "sun", "it"))
    steps = [  # (the dialogue model's token, the ear's) -> what the dialogue model keeps
        ((it, PAD), it),  # Moshi's turn: its own words
        ((PAD, EPAD), PAD),
        ((EPAD, what), EPAD),  # the ear hears a word before the model knows the user speaks
        ((eos, PAD), eos),  # the model's marker stays...
        ((sun, PAD), what),  # ...and the word the ear began comes right after it
        ((sun, EPAD), EPAD),  # its own words of the user's are the ear's
        ((PAD, color), color),
        ((EPAD, PAD), EPAD),  # an end of padding with nothing owed stays (before its BOS)
        ((bos, sun), bos),  # Moshi's turn again: its own words
        ((it, PAD), it),
    ]
    with ear.streaming(2):
        for (mine, heard), kept in steps:
            # item 1 is paused throughout: it keeps what its model sampled, its state still
            assert _write(ear, [mine, sun], [heard, color], [True, False]) == [kept, sun]
        assert ear._hearing == [False, False] and [t for t in ear._recent[0] if t != PAD] == [sun]
        # a late word of the user's: the model's EOS takes what the ear wrote; with nothing
        # heard (item 1) there is no user's turn: the marker is padding, the reply goes on
        assert _write(ear, [eos, eos], [PAD, PAD]) == [eos, PAD]
        assert _write(ear, [it, it], [PAD, PAD]) == [sun, it]
        assert ear._hearing == [True, False]
        _write(ear, [PAD, PAD], [EPAD, EPAD])
        assert _write(ear, [eos, eos], [PAD, what]) == [eos, eos]  # item 1 hears a word now
        ear.reset(torch.tensor([True, False]))
        assert ear._hearing == [False, True]
        assert _write(ear, [it, it], [PAD, PAD]) == [it, what]


def test_the_ear_takes_the_dialogue_models_codebooks_and_turn_markers(parts):
    files, stt = parts
    tok = files.load_tokenizer()
    lm = files.config.lm
    with pytest.raises(ValueError, match="8 user codebooks, got one with n_q=16, dep_q=8"):
        Ear(files.load_lm(dtype=torch.float32), lm, tok)  # a dialogue model is no ear
    with pytest.raises(ValueError, match="writes down the user's words"):
        Ear(stt, lm, ModelFiles.resolve(str(model_folder("stt"))).load_tokenizer())
    ear = Ear(stt, lm, tok)
    with ear.streaming(1), pytest.raises(RuntimeError, match=r"before Ear\.listen"):
        ear.write(torch.tensor([PAD]))


def test_a_dialogue_models_config_names_its_ear(tmp_path):
    # dialogue_config.ear: a folder relative to the config's; the engine builders load it
    root = tmp_path / "family"
    shutil.copytree(model_folder("dialogue").parent, root, ignore=shutil.ignore_patterns("tts"))
    config = json.loads((root / "dialogue" / "config.json").read_text())
    config["dialogue_config"]["ear"] = "../stt"
    (root / "dialogue" / "config.json").write_text(json.dumps(config))
    files = ModelFiles.resolve(str(root / "dialogue"))
    assert files.ear is not None and files.ear.lm_weights.resolve() == root / "stt" / "model.safetensors"
    config["dialogue_config"]["ear"] = "../nowhere"
    (root / "dialogue" / "config.json").write_text(json.dumps(config))
    with pytest.raises(FileNotFoundError, match=r"no such file: .*nowhere/config\.json"):
        ModelFiles.resolve(str(root / "dialogue"))
    del config["dialogue_config"]["user_text_delay_seconds"]
    config["dialogue_config"]["ear"] = "../stt"
    (root / "dialogue" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"dialogue_config\.ear must name .* for a model that writes down"):
        ModelFiles.resolve(str(root / "dialogue"))


def test_two_conversations_hear_through_one_ear(parts):
    # the engine steps the ear on every slot's codes before the dialogue model: each slot's
    # heard text ends with its own user's question, slots starting at different ticks
    from moshi.audio import FRAME_RATE, read_audio
    from moshi.lm.sampling import SamplingOptions
    from moshi.stream.engine import Engine
    from moshi.stream.offline import Dialogue, run_dialogues

    files, stt = parts
    held_out = Path(__file__).parents[1] / "fixtures" / "small_heldout"
    questions = json.loads((held_out / "questions.json").read_text())
    lm, tok = files.load_lm(dtype=torch.float32), files.load_tokenizer()
    ear = Ear(stt, lm.config, tok, cuda_graphs=False)
    options = SamplingOptions(temp=0.6, temp_text=0.0, text_seed=0, audio_seed=0)
    pcms = [read_audio(held_out / q["wav"]) for q in questions]
    pcms[1] = np.concatenate([np.zeros(len(pcms[0]) // 3, dtype=np.float32), pcms[1]])  # a later start
    dialogues = [Dialogue.of(pcm, round(2 * FRAME_RATE)) for pcm in pcms]
    done: dict[int, Dialogue] = {}
    with Engine(files.load_mimi(), lm, tok, 2, options, cuda_graphs=False, ear=ear) as engine:
        run_dialogues(engine, dialogues, options, on_done=done.__setitem__)
    for i, q in enumerate(questions):  # (a word the ear writes into the silence before may lead)
        assert done[i].heard_text().endswith(q["question"]), (done[i].heard_text(), q["question"])
