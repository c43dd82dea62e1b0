"""The released 1.6B TTS's second text stream (a lookahead of the words to come, muxed into
the text tokens), against Kyutai's own state machine and `TTSModel.generate`
(tests/fixtures/tts_second_stream_machine.json, tts_16b_lm_tiny)."""

import json

import pytest
import soundfile as sf
import torch

from moshi.cli import common
from moshi.cli.main import main
from moshi.lm import KyutaiConfig, load_lm
from moshi.tts import ScriptBuilder
from moshi.tts.options import TTSConfig
from moshi.tts.script import Entry
from moshi.tts.state_machine import NEW_WORD, PAD, WordStateMachine
from tests.support.fixtures import FIXTURES, TTS_16B_TINY, config_of, fake_hub_cache, fixture_io, fixture_meta
from tests.support.tts import make_tts

NAME = "tts_16b_lm_tiny"
MACHINE_CASES = json.loads((FIXTURES / "tts_second_stream_machine.json").read_text())
MUX = 101  # the fixtures' text vocabulary (100) + 1


def _tts(lm, **options):
    meta = fixture_meta(NAME)
    return make_tts(lm, second_stream_ahead=meta["second_stream_ahead"], **options)


@pytest.mark.parametrize("case", MACHINE_CASES, ids=lambda c: f"ahead{c['second_stream_ahead']}")
def test_state_machine_matches_the_reference(case):
    entries = [Entry(tuple(tokens), text, padding) for tokens, text, padding in case["entries"]]
    m = WordStateMachine(
        entries,
        max_padding=case["max_padding"],
        initial_padding=case["initial_padding"],
        second_stream_ahead=case["second_stream_ahead"],
        mux_card=MUX,
    )
    assert [m.process(step, t) for step, t in enumerate(case["predicted"])] == case["fed"]
    assert [step for _, step in m.consumed] == case["consumption_steps"]
    assert m.transcript == [tuple(x) for x in case["transcript"]]
    assert m.end_step == case["end_step"]


def test_the_second_stream_reads_words_ahead():
    """(What Kyutai's machine feeds here.) A word starts with its own first token on the
    main stream and 0 on the second, which then gives the next word's tokens (breaks not
    counted) on the following steps; the end of the text is (pad, 0), once."""
    words = [Entry((10, 11), "a", 2), Entry((), "", 1), Entry((20,), "b", 1), Entry((30, 31), "c", 2)]
    m = WordStateMachine(words, max_padding=8, initial_padding=0, second_stream_ahead=1, mux_card=MUX)
    fed = [m.process(step, NEW_WORD) for step in range(12)]
    none = -1
    assert [(t % MUX, t // MUX - 1) for t in fed] == [  # token = main + MUX * (second + 1)
        (10, NEW_WORD),  # "a"
        (11, 20),  # the second stream reads "b"
        (PAD, none),
        (PAD, none),  # the break
        (20, NEW_WORD),  # "b"
        (PAD, 30),  # "c" ahead
        (30, NEW_WORD),  # "c": nothing after it
        (31, 31),  # the rest of the lookahead
        (PAD, none),
        (PAD, NEW_WORD),  # the end
        (PAD, none),
        (PAD, none),
    ]
    assert m.end_step == 9 and [step for _, step in m.consumed] == [0, 3, 4, 6]


def test_a_break_leaves_the_padding_budget_running():
    """A break forces its padding, but the model may pad on with what is left of the budget
    (what Kyutai's machine does: the next word here starts at step 9, not 4)."""
    m = WordStateMachine([Entry((10,), "a", 1), Entry((), "", 2), Entry((30,), "e", 1)], 8, 0)
    fed = [m.process(step, t) for step, t in enumerate([NEW_WORD, PAD, NEW_WORD] + [PAD] * 9)]
    assert fed == [NEW_WORD, 10, PAD, PAD, PAD, PAD, PAD, PAD, PAD, NEW_WORD, 30, PAD]
    assert [step for _, step in m.consumed] == [0, 2, 9]


def test_a_second_stream_needs_the_vocabulary_size():
    with pytest.raises(ValueError, match="mux_card"):
        WordStateMachine(second_stream_ahead=2)


def test_generation_matches_the_reference(tts_16b_lm, tokenizer):
    meta, io = fixture_meta(NAME), fixture_io(NAME)
    entries = ScriptBuilder(tokenizer.encode, multi_speaker=True, padding_between=1).script(meta["script"])
    assert [t for e in entries for t in e.tokens] == io["entry_tokens"].tolist()
    assert [e.padding for e in entries] == io["entry_padding"].tolist()
    result = _tts(tts_16b_lm).generate(meta["script"], voices=[TTS_16B_TINY / "voice.safetensors"], cfg=2.0)
    assert result.frames.shape == io["frames"].shape == (1, 9, 79)
    assert torch.equal(result.frames, io["frames"])
    assert (result.frames[0, 0] > MUX).any()  # both text streams were fed
    assert result.frames[0, 0].tolist() == io["logged_text_tokens"][:79, 1].tolist()
    assert result.transcript == [tuple(x) for x in meta["transcript"]]
    assert result.end_step == io["end_step"].item()
    assert [step for _, step in result.consumed] == io["consumption_steps"].tolist()


def test_fewer_codebooks_match_the_reference(tokenizer):
    """n_q=4 of 8: the codebooks that share a weight set with dropped ones keep it, the
    weight set that only dropped codebooks use is dropped."""
    meta, io = fixture_meta(NAME), fixture_io(NAME)
    lm = load_lm(TTS_16B_TINY / "weights.safetensors", TTS_16B_TINY / "config.json", n_q=4)
    assert lm.config.depformer_weights_per_step_schedule == (0, 1, 2, 2) and len(lm.depformer_in) == 3
    result = _tts(lm).generate(meta["script"], voices=[TTS_16B_TINY / "voice.safetensors"], cfg=2.0)
    assert torch.equal(result.frames, io["frames_few"])


def test_a_kept_session_restarts_exactly(tts_16b_lm):
    meta, io = fixture_meta(NAME), fixture_io(NAME)
    tts = _tts(tts_16b_lm, keep_session=True)
    voice = [TTS_16B_TINY / "voice.safetensors"]
    tts.generate(["qu hokopily qu"], voices=voice, cfg=2.0)
    assert torch.equal(tts.generate(meta["script"], voices=voice, cfg=2.0).frames, io["frames"])
    tts.close()


def test_the_config_gives_the_lookahead():
    config = KyutaiConfig.load(TTS_16B_TINY / "config.json")
    assert TTSConfig.parse(config).second_stream_ahead == 2
    single = KyutaiConfig.load(FIXTURES / "tts_lm_tiny" / "config.json")
    assert TTSConfig.parse(single).second_stream_ahead == 0
    raw = config_of(FIXTURES / "tts_lm_tiny")
    raw["tts_config"]["second_stream_ahead"] = 2
    with pytest.raises(ValueError, match="needs a model with demux_second_stream"):
        TTSConfig.parse(KyutaiConfig.parse(raw))
    raw["tts_config"]["second_stream_ahead"] = -1
    with pytest.raises(ValueError, match="second_stream_ahead must be an integer >= 0"):
        TTSConfig.parse(KyutaiConfig.parse(raw))


def test_a_lookahead_needs_a_second_text_stream(tts_lm):
    with pytest.raises(ValueError, match="second text stream"):
        make_tts(tts_lm, second_stream_ahead=2)


def test_speak_with_the_default_model(tmp_path, monkeypatch):
    """`moshi speak` with no model flags where the package's own TTS is not the default (a GPU
    machine): kyutai/tts-1.6b-en_fr's files (here the tiny model with its features, in a fake
    hub cache) give the speech of the TTS API."""
    config = config_of(
        TTS_16B_TINY,
        moshi_name="dsm_tts.safetensors",
        mimi_name="mimi.safetensors",
        mimi_config_name="mimi.json",
        tokenizer_name="tokenizer.model",
    )
    files = {
        "config.json": json.dumps(config).encode(),
        "dsm_tts.safetensors": TTS_16B_TINY / "weights.safetensors",
        "mimi.safetensors": FIXTURES / "mimi_tiny" / "weights.safetensors",
        "mimi.json": FIXTURES / "mimi_tiny" / "config.json",
        "tokenizer.model": FIXTURES / "tiny_spm_100.model",
    }
    fake_hub_cache(tmp_path / "hub", monkeypatch, "kyutai/tts-1.6b-en_fr", files)
    monkeypatch.setattr(common, "shipped_kinds", lambda: ())  # on a CPU the package's own TTS comes first
    out, timings, voice = tmp_path / "out.wav", tmp_path / "words.json", TTS_16B_TINY / "voice.safetensors"
    text = "hokopily qu zihogequ midaba"
    assert (
        main(["speak", text, "--voice", str(voice), "--temp", "0", "-o", str(out), "--timings", str(timings)])
        == 0
    )
    lm = load_lm(TTS_16B_TINY / "weights.safetensors", TTS_16B_TINY / "config.json")
    expected = _tts(lm, padding_between=1).generate([text], [voice], cfg=2.0)
    assert sf.info(out).frames == expected.audio_codes.shape[-1] * 1920
    words = json.loads(timings.read_text())["words"]
    assert [(w["word"], w["start"]) for w in words] == [(w.word, w.start) for w in expected.words]
