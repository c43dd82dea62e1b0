"""CI's smoke run of the quality benchmark: a tiny corpus, the recogniser on its held-out
files, the tiny codec's round trip (word error rates, their ratio, STOI), and the LM bars
(--stt, --tts, --dialogue) with random models of the small family's layouts."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.support.fixtures import MIMI_TINY, save_weights

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench" / "quality.py"
pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("flite") is None, reason="needs espeak-ng and flite"
)
TINY = dict(dim=32, num_heads=2, num_layers=1, context=50, card=64, depformer_dim=16, depformer_num_heads=1,
            depformer_dim_feedforward=32)  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    pytest.importorskip("pocketsphinx")
    from moshi.data.build import build_corpus
    from moshi.data.synth import FAST_MOSHI_VOICE

    out = tmp_path_factory.mktemp("quality") / "corpus"
    build_corpus(out, seed=2, n_dialogues=1, n_utterances=2, n_tts=2, heldout_fraction=0.5,
                 moshi_voice=FAST_MOSHI_VOICE, workers=1)  # fmt: skip
    return out


def _bench(*args) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, str(BENCH), *map(str, args)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_quality_bench_smoke(corpus):
    lines = _bench(
        corpus, "--limit", 1, "--codec", MIMI_TINY / "weights.safetensors", MIMI_TINY / "config.json"
    )
    wer = [x for x in lines if x["metric"] == "recogniser_wer"]
    assert sorted((x["audio"], x["manifest"]) for x in wer) == [
        ("codec", "heldout/stt.jsonl"), ("codec", "heldout/tts.jsonl"),
        ("original", "heldout/stt.jsonl"), ("original", "heldout/tts.jsonl"),
    ]  # fmt: skip
    assert all(x["files"] == 1 and x["words"] > 0 and x["wer"] >= 0 for x in wer)
    codec = [x for x in lines if x["metric"] == "codec"]
    assert len(codec) == 2 and all(-1 <= x["stoi_mean"] <= 1 and x["wer_ratio"] >= 0 for x in codec)


def _random_model(folder: Path, task: str, corpus: Path, **extra: object) -> Path:
    """A model folder of the recipe's layout for `task`, tiny and random, on the tiny Mimi
    and the corpus' tokenizer (`extra`: more config keys)."""
    from moshi.lm import LMModel
    from moshi.lm.config import KyutaiConfig

    config = json.loads((REPO / "recipes" / "small" / f"{task}.json").read_text()) | TINY
    config.update(
        mimi_name=str(MIMI_TINY / "weights.safetensors"),
        mimi_config_name=str(MIMI_TINY / "config.json"),
        tokenizer_name=str(corpus / "tokenizer.model"),
        moshi_name="model.safetensors",
        **extra,
    )
    folder.mkdir()
    torch.manual_seed(0)
    model = LMModel(KyutaiConfig.parse(config).lm)
    save_weights(folder, model.state_dict(), "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_quality_bench_models_smoke(corpus, tmp_path):
    models = {task: _random_model(tmp_path / task, task, corpus) for task in ("stt", "tts")}
    heard = {"lm_gen_config": {"temp_text": 0.0}, "dialogue_config": {"user_text_delay_seconds": 0.48},
             "context": 500}  # fmt: skip
    models["dialogue"] = _random_model(tmp_path / "dialogue", "dialogue", corpus, **heard)
    lines = _bench(corpus, "--limit", 1, "--kinds", "stt", "--stt", models["stt"], "--tts", models["tts"],
                   "--dialogue", models["dialogue"], "--ear", models["stt"], "--replies", "text",
                   "--threads", 1)  # fmt: skip
    stt = [x for x in lines if x["metric"] == "stt"]
    assert [x["manifest"] for x in stt] == ["heldout/stt.jsonl"]
    assert stt[0]["files"] == 1 and stt[0]["words"] > 0 and stt[0]["wer"] >= 0
    (voice_wer,) = stt[0]["wer_by_voice"].values()  # one file: one held-out voice, its rate the total
    assert voice_wer == stt[0]["wer"]
    (tts,) = [x for x in lines if x["metric"] == "tts"]
    assert tts["files"] == 1 and tts["seconds_of_speech"] > 0
    assert {"recogniser_wer", "recogniser_wer_synthesiser", "wer_ratio", "stt_wer"} <= set(tts)
    dialogue = {x["audio"]: x for x in lines if x["metric"] == "dialogue"}
    assert set(dialogue) == {"corpus", "model"}
    truth = dialogue["corpus"]
    assert truth["questions"] >= 1 and truth["reply_correct_text"] == 1.0  # the corpus' own words answer
    assert 0 <= truth["reply_correct_stt"] <= 1  # (read by a random speech-to-text model)
    by_kind = [tuple(map(int, x.split("/"))) for x in truth["reply_correct_text_by_kind"].values()]
    assert sum(m for _, m in by_kind) == truth["questions"] and all(ok == m for ok, m in by_kind)
    assert truth["replied"] == 1.0 and 0 < truth["latency_median_s"] < 3.0
    assert truth["quiet_while_user_speaks"] >= 0.9
    model = dialogue["model"]
    assert model["temp_text"] == 0.0 and model["temp"] == 0.6  # the model's text sampling, default audio
    assert model["ear"] == str(models["stt"])  # the speech-to-text model wrote down the user's words
    assert model["questions"] == truth["questions"]
    assert 0 <= model["reply_correct"] <= 1 and 0 <= model["quiet_while_user_speaks"] <= 1
    assert model["heard_wer"] >= 0  # it writes down the user's words: what it knows given them right too
    given = [tuple(map(int, x.split("/"))) for x in model["reply_given_question_by_kind"].values()]
    assert sum(m for _, m in given) == truth["questions"]  # a short dialogue: every reply in its context
    assert model["reply_given_question"] == round(sum(ok for ok, _ in given) / truth["questions"], 3)


def test_quality_bench_measures_the_shipped_family(corpus):
    from moshi.small import FOLDER, shipped_kinds

    lines = _bench(corpus, "--limit", 1, "--kinds", "stt", "--shipped", "--threads", 1)
    (codec,) = [x for x in lines if x["metric"] == "codec"]
    assert codec["codec"] == str(FOLDER / "mimi.safetensors")
    models = {x["metric"]: x["model"] for x in lines if "model" in x}
    assert {k for k in models if k in ("stt", "tts")} == set(shipped_kinds()) & {"stt", "tts"}
    assert all(Path(m).parent == FOLDER for m in models.values())
