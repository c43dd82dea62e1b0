"""Text-to-speech with Kyutai's delayed-streams TTS models (e.g. `kyutai/tts-1.6b-en_fr`).

The LM runs the other way round from Moshi: the text stream leads and the audio follows
`delay_steps` steps behind. At each step the model predicts whether a new word starts;
the word state machine (state_machine.py) feeds it the script's words accordingly; the
audio tokens of the frame then come from the depformer. Voices condition the model
through cross-attention, the CFG strength through a lookup-table condition (models
trained with CFG distillation) or by running guidance for real (`guidance`).

    tts, mimi = load_tts(ModelFiles.resolve("kyutai/tts-1.6b-en_fr"))
    voice = "expresso/ex03-ex01_happy_001_channel1_334s.wav"   # in kyutai/tts-voices
    result = tts.generate(["Hello there.", "Hi!"], voices=[voice], cfg=2.0)
    result.frames      # [1, 1 + n_q, T]: text token fed, then audio tokens (delays undone)
    result.transcript  # [(word, step), ...]; result.words gives times in seconds
    for chunk in SpeechStream(tts, mimi, ["Hello there."], [voice], cfg=2.0): ...  # as generated
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..audio import FRAME_RATE
from ..lm.conditioners import ConditionValues
from ..lm.generator import Generator
from ..lm.guidance import Guidance
from ..lm.model import LMModel
from ..lm.text import TextTokenizer
from .options import TTSOptions
from .script import Entry, ScriptBuilder
from .state_machine import WordStateMachine
from .text_input import Feeder, TextInput
from .voices import VOICE_REPO, load_voice, resolve_voice, speakers_condition

FrameCallback = Callable[[Tensor], None]  # one frame [B, 1 + n_q, 1] as it is generated


@dataclass(frozen=True)
class WordTiming:
    """A spoken word and when it is heard, in seconds from the start of the audio."""

    word: str
    start: float
    end: float


@dataclass
class TTSResult:
    """One script's generation."""

    # [1, 1 + n_q, T]: the text token fed (both streams muxed for models with a second text
    # stream, see state_machine.py), then the audio tokens (-1: none yet)
    frames: Tensor
    transcript: list[tuple[str, int]]  # (word, step where it started)
    end_step: int | None  # step where the script ran out (None: stopped by max_steps)
    delay_steps: int  # frames before the audio starts
    consumed: list[tuple[Entry, int]] = field(default_factory=list)  # every entry, breaks included

    @property
    def audio_codes(self) -> Tensor:
        """[1, n_q, T - delay_steps]: the frames that carry audio, for Mimi."""
        return self.frames[:, 1:, self.delay_steps :]

    @property
    def words(self) -> list[WordTiming]:
        """Word timings: a word fed at step s is heard s / 12.5 s into the audio (the audio
        lags the text by `delay_steps` frames, which the audio does not include)."""
        starts = [step for _, step in self.consumed]
        ends = [*starts[1:], self.end_step if self.end_step is not None else self.frames.shape[-1]]
        return [
            WordTiming(e.text, s / FRAME_RATE, end / FRAME_RATE)
            for (e, s), end in zip(self.consumed, ends, strict=True)
            if not e.is_break
        ]


class TTS:
    """Text-to-speech over one model. `tokenizer`: a `TextTokenizer` or the path of the
    SentencePiece model; `delay_steps`: how far the audio lags the text (the config's
    `tts_config.audio_delay` * 12.5); `second_stream_ahead`: the config's
    `tts_config.second_stream_ahead` (models with a second text stream); `voice_suffix`: how
    the voice repo names this model's voices (see voices.py). Other options: see `TTSOptions`.
    One generation at a time (a batch of scripts runs as one).

    `keep_session` (default: with CUDA graphs) keeps the generator's streaming session open
    between generations of the same batch size, restarting its items instead, so that its
    CUDA graphs are captured once rather than at every generation; `close()` ends it."""

    def __init__(
        self,
        model: LMModel,
        tokenizer: TextTokenizer | str | Path,
        *,
        delay_steps: int,
        voice_suffix: str = "",
        voice_repo: str = VOICE_REPO,
        cuda_graphs: bool = True,
        keep_session: bool | None = None,
        **options: object,
    ):
        config = model.config
        if config.n_q != config.dep_q or not config.dep_q:
            raise ValueError(
                f"not a text-to-speech model: it generates {config.dep_q} of its {config.n_q} streams"
            )
        self.model = model
        if not isinstance(tokenizer, TextTokenizer):
            tokenizer = TextTokenizer(tokenizer, (config.text_end_padding_id, config.text_padding_id))
        self.tokenizer = tokenizer
        self.options = TTSOptions(delay_steps=delay_steps, **options)  # type: ignore[arg-type]
        if self.options.second_stream_ahead and not config.demux_second_text_stream:
            raise ValueError(
                "second_stream_ahead needs a model with a second text stream (demux_second_stream)"
            )
        self.voice_suffix, self.voice_repo = voice_suffix, voice_repo
        self.keep_session = (
            cuda_graphs and model.device.type == "cuda" if keep_session is None else keep_session
        )
        self._kept: tuple[int, ExitStack] | None = None  # (batch size, the open session)
        o = self.options
        self.generator = Generator(
            model,
            temp=o.temp,
            temp_text=o.temp,
            seed=o.seed,
            cuda_graphs=cuda_graphs,
            guidance=Guidance(o.guidance, guide_text=False),
            audio_delay_steps=delay_steps,
        )

    @property
    def delay_steps(self) -> int:
        return self.options.delay_steps

    @property
    def multi_speaker(self) -> bool:
        """Whether turns carry speaker tokens: models conditioned on voices."""
        return self.model.config.conditioner("speaker_wavs") is not None

    # -- conditions ----------------------------------------------------------------------------
    def conditions(self, voices: Sequence[str | Path] = (), cfg: float | None = None) -> ConditionValues:
        """One script's conditions: its voices (files or names in the voice repo; voice 1 is
        the main speaker) and, for models trained with CFG distillation, the CFG strength."""
        lm = self.model.config
        values: dict[str, object] = {}
        speakers = lm.conditioner("speaker_wavs")
        if voices:
            if speakers is None:
                raise ValueError("this model takes no voice")
            paths = [resolve_voice(v, self.voice_suffix, self.voice_repo) for v in voices]
            values["speaker_wavs"] = speakers_condition([load_voice(p, speakers.dim) for p in paths])
        control = lm.conditioner("control")
        if control is not None and "ok" in control.possible_values:
            values["control"] = "ok"
        if cfg is not None:
            lut = lm.conditioner("cfg")
            if lut is None:
                raise ValueError(
                    "this model takes no CFG condition (it was not trained with CFG distillation): "
                    "use TTS(guidance=...) for classifier-free guidance"
                )
            match = [v for v in lut.possible_values if float(v) == float(cfg)]
            if not match:
                raise ValueError(
                    f"cfg={cfg} is not supported by this model; valid: {', '.join(lut.possible_values)}"
                )
            values["cfg"] = match[0]
        return values  # type: ignore[return-value]

    # -- whole scripts -------------------------------------------------------------------------
    def generate(
        self,
        script: Sequence[str],
        voices: Sequence[str | Path] = (),
        cfg: float | None = None,
        on_frame: FrameCallback | None = None,
    ) -> TTSResult:
        """Speak a script (a list of turns; speakers alternate from turn to turn)."""
        return self.generate_batch([script], [voices], cfg, on_frame)[0]

    def generate_batch(
        self,
        scripts: Sequence[Sequence[str]],
        voices: Sequence[Sequence[str | Path]] | None = None,
        cfg: float | None = None,
        on_frame: FrameCallback | None = None,
    ) -> list[TTSResult]:
        """Several scripts at once (one batch item each), each with its own voices."""
        voices = [()] * len(scripts) if voices is None else voices
        if len(voices) != len(scripts):
            raise ValueError(f"got voices for {len(voices)} scripts, and {len(scripts)} scripts")
        conditions = [self.conditions(v, cfg) for v in voices]
        feeders = [Feeder.of_script(self._builder(), self._machine(True), s) for s in scripts]
        frames: list[Tensor] = []
        for frame in self.frames(feeders, conditions):
            frames.append(frame)
            if on_frame is not None:
                on_frame(frame)
        return self.collect(feeders, frames)

    # -- streaming -----------------------------------------------------------------------------
    def feeder(self, text: Sequence[str] | TextInput) -> Feeder:
        """A script (list of turns), or text arriving while speaking."""
        if isinstance(text, TextInput):
            return Feeder(self._builder(), self._machine(False), text)
        return Feeder.of_script(self._builder(), self._machine(True), text)

    def frames(
        self, feeders: Sequence[Feeder], conditions: Sequence[ConditionValues], pace: bool = True
    ) -> Iterator[Tensor]:
        """Run the model for a batch of feeders; yields each frame [B, 1 + n_q, 1] as soon as
        it is generated, until every item's script is spoken (or `max_steps`). Items fed
        by a `TextInput` that are out of words pad; with `pace`, no faster than real time."""
        o, B = self.options, len(feeders)
        step = 0
        max_delay = self.model.config.max_delay

        def on_text(text: Tensor) -> Tensor:  # the machines choose what the model is fed
            fed = [f.machine.process(step, int(t)) for f, t in zip(feeders, text.tolist(), strict=True)]
            return torch.tensor(fed, dtype=text.dtype, device=text.device)

        no_input = torch.zeros(B, 0, 1, dtype=torch.long, device=self.model.device)
        start = time.monotonic()
        self.generator.on_text = on_text
        try:
            with self._session(B, conditions):
                while step < o.max_steps:
                    for f in feeders:
                        f.poll()
                    if pace:
                        self._pace(feeders, step, start)
                    frame = self.generator.step(no_input)
                    step += 1
                    if frame is not None:
                        yield frame
                    stops = [self._stop_step(f) for f in feeders]
                    if all(s is not None and step >= s for s in stops) and step > max_delay:
                        break
        finally:
            self.generator.on_text = None

    def _session(self, batch_size: int, conditions: Sequence[ConditionValues]) -> AbstractContextManager:
        """The generator's session for one generation: a new one, or the kept one restarted."""
        if not self.keep_session:
            return self.generator.streaming(batch_size, conditions)
        if self._kept is not None and self._kept[0] == batch_size:
            self.generator.reset_streaming()
            self.generator.set_conditions(conditions)
        else:
            self.close()
            stack = ExitStack()
            stack.enter_context(self.generator.streaming(batch_size, conditions))
            self._kept = (batch_size, stack)
        return nullcontext()

    def close(self) -> None:
        """End the kept session (see `keep_session`), freeing its caches."""
        if self._kept is not None:
            self._kept[1].close()
            self._kept = None

    def _stop_step(self, feeder: Feeder) -> int | None:
        end = feeder.machine.end_step
        return None if end is None else end + self.options.delay_steps + self.options.final_padding

    def _pace(self, feeders: Sequence[Feeder], step: int, start: float) -> None:
        """While every item waits for text, do not run ahead of real time (no need to pad
        faster than the audio plays); before the first step, wait for the first text."""
        while feeders and all(f.starved for f in feeders):
            ahead = (step - self.options.delay_steps) / FRAME_RATE - (time.monotonic() - start)
            if ahead <= 0 and step > 0:
                return
            feeders[0].source.wait(0.05 if step == 0 else min(ahead, 0.05))  # type: ignore[union-attr]
            for f in feeders:
                f.poll()

    def collect(self, feeders: Sequence[Feeder], frames: list[Tensor]) -> list[TTSResult]:
        """The results of a run of `frames`: each item's frames [1, 1 + n_q, 1] joined and cut
        where its own generation ended."""
        n_q = self.model.config.dep_q
        every = torch.cat(frames, -1) if frames else torch.zeros(len(feeders), 1 + n_q, 0, dtype=torch.long)
        out = []
        for b, f in enumerate(feeders):
            stop = self._stop_step(f)
            T = every.shape[-1] if stop is None else min(every.shape[-1], stop - self.model.config.max_delay)
            m = f.machine
            out.append(
                TTSResult(
                    every[b : b + 1, :, :T].cpu(), m.transcript, m.end_step, self.delay_steps, m.consumed
                )
            )
        return out

    def _builder(self) -> ScriptBuilder:
        return ScriptBuilder(self.tokenizer.encode, self.multi_speaker, self.options.padding_between)

    def _machine(self, complete: bool) -> WordStateMachine:
        o = self.options
        return WordStateMachine(
            max_padding=o.max_padding,
            initial_padding=o.initial_padding,
            complete=complete,
            second_stream_ahead=o.second_stream_ahead,
            mux_card=self.model.config.text_mux_card,
            new_word=self.model.config.text_end_padding_id,
            pad=self.model.config.text_padding_id,
        )
