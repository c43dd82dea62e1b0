"""A conversation's bounded queues: what is dropped, what is counted, what is kept."""

import numpy as np
import pytest

from moshi.lm.sampling import SamplingOptions
from moshi.stream.opus import OpusError
from moshi.stream.session import Outgoing, Session
from tests.support.server import FRAME, ogg_messages


def session(input_backlog=3, output_backlog=4) -> Session:
    return Session(None, SamplingOptions(), input_backlog, output_backlog)


def test_inbox_keeps_the_newest_frames_and_counts_the_rest():
    s = session(input_backlog=3)
    pcm = np.linspace(-0.5, 0.5, 8 * FRAME, dtype=np.float32)
    messages = ogg_messages(pcm)
    assert s.receive_audio(messages[0][1:], now=1.0) == 1
    assert sum(s.receive_audio(m[1:], now=2.0) for m in messages[1:]) == 7
    assert len(s.inbox) == 3 and s.stats.dropped_in == 5
    assert [t for _, t in s.inbox] == [2.0, 2.0, 2.0]
    frame, _ = s.take_frame()
    assert frame.shape == (FRAME,) and frame.dtype == np.float32


def test_inbox_rejects_bytes_that_are_not_ogg_opus():
    with pytest.raises(OpusError):
        session().receive_audio(b"RIFF....WAVEfmt ", now=0.0)


def out(i: int, text: str | None = None) -> Outgoing:
    return Outgoing(f"audio{i}".encode(), [text] if text else [], arrived=float(i), compute_ms=1.0)


def test_outbox_drops_the_oldest_but_never_the_headers_or_the_text():
    s = session(output_backlog=3)
    for i in range(8):
        s.deliver(out(i, text=f"t{i}"))
    assert [o.audio for o in s.outbox] == [b"audio0", b"audio6", b"audio7"]  # audio0 has the headers
    assert s.outbox[0].keep and not s.outbox[1].keep
    assert [t for o in s.outbox for t in o.texts] == [f"t{i}" for i in range(8)]
    assert s.stats.dropped_out == 5
    assert s.out_ready.is_set()


def test_outbox_ignores_empty_outputs_and_closed_sessions():
    s = session()
    s.deliver(Outgoing(b"", [], 0.0, 1.0))  # the first step has no audio yet
    assert not s.outbox
    s.deliver(Outgoing(b"", ["hi"], 0.0, 1.0))
    s.deliver(out(1))
    assert s.outbox[1].keep  # the first *audio* carries the headers
    s.closed = True
    s.deliver(out(2))
    assert len(s.outbox) == 2


def test_backlogs_must_be_positive():
    with pytest.raises(ValueError, match="backlogs"):
        session(input_backlog=0)
