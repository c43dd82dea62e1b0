"""Ogg/Opus over sphn: round trips, framing, and garbage rejected deterministically."""

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moshi.stream.opus import Framer, OpusDecoder, OpusEncoder, OpusError, check_stream_start
from tests.support.ogg import TOOLS, node, read_ogg

FRAME = 1920


def encoded(pcm: np.ndarray) -> list[bytes]:
    enc = OpusEncoder()
    return [enc.encode(pcm[i : i + FRAME]) for i in range(0, len(pcm) - FRAME + 1, FRAME)]


def test_round_trip_keeps_length_and_sound(speech):
    pcm = speech[: 25 * FRAME]
    pages = encoded(pcm)
    assert pages[0].startswith(b"OggS") and b"OpusHead" in pages[0] and b"OpusTags" in pages[0]
    assert all(p.startswith(b"OggS") for p in pages)
    dec = OpusDecoder()
    out = np.concatenate([dec.append(p) for p in pages])
    assert out.dtype == np.float32 and out.shape == pcm.shape
    # Opus is lossy and adds a short delay; it is still the same sound.
    corr = max(float(np.corrcoef(out[lag:], pcm[: len(pcm) - lag])[0, 1]) for lag in range(0, 400, 4))
    assert corr > 0.8


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=40))
def test_decoding_does_not_depend_on_how_bytes_are_cut(cuts):
    stream = b"".join(encoded(np.sin(np.arange(8 * FRAME, dtype=np.float32) / 9) * 0.3))
    whole = OpusDecoder().append(stream)
    dec, pieces, i, k = OpusDecoder(), [], 0, 0
    while i < len(stream):
        pieces.append(dec.append(stream[i : i + cuts[k % len(cuts)]]))
        i, k = i + cuts[k % len(cuts)], k + 1
    np.testing.assert_array_equal(np.concatenate(pieces), whole)


def test_not_ogg_is_rejected_at_once_and_stays_rejected():
    dec = OpusDecoder()
    with pytest.raises(OpusError, match="not an Ogg stream"):
        dec.append(b"hello")
    with pytest.raises(OpusError):
        dec.append(encoded(np.zeros(FRAME, np.float32))[0])  # a failed stream stays failed


def test_ogg_that_is_not_opus_is_rejected():
    # sphn would decode this one as if it were Opus: the decoder checks the first packet.
    first = bytearray(encoded(np.zeros(FRAME, np.float32))[0])
    i = first.index(b"OpusHead")
    first[i : i + 8] = b"\x01vorbis\x00"
    with pytest.raises(OpusError, match="not Opus"):
        OpusDecoder().append(bytes(first))


def test_stream_start_checks_need_only_the_first_page():
    page = encoded(np.zeros(FRAME, np.float32))[0]
    assert check_stream_start(page[:3]) is False  # "Ogg" so far: undecided
    assert check_stream_start(page[:30]) is False
    assert check_stream_start(page) is True
    with pytest.raises(OpusError, match="version"):
        check_stream_start(page[:4] + b"\x01" + page[5:])
    with pytest.raises(OpusError, match="beginning"):
        check_stream_start(page[:5] + b"\x00" + page[6:])


def test_broken_pages_after_a_good_start_raise_opus_error():
    pages = encoded(np.zeros(4 * FRAME, np.float32))
    dec = OpusDecoder()
    dec.append(pages[0])
    with pytest.raises(OpusError, match="broken"):
        dec.append(b"garbage that is not a page" * 4)
        dec.append(pages[1])  # sphn may notice one call late


def test_framer_recuts_any_lengths():
    framer = Framer(FRAME)
    pcm = np.arange(5 * FRAME + 7, dtype=np.float32)
    cut = 3 * FRAME + 1
    frames = framer.push(pcm[:100]) + framer.push(pcm[100:cut]) + framer.push(pcm[cut:])
    assert len(frames) == 5 and framer.pending == 7
    np.testing.assert_array_equal(np.concatenate(frames), pcm[: 5 * FRAME])
    with pytest.raises(ValueError, match="mono"):
        framer.push(np.zeros((2, 10), np.float32))


def test_encoder_checks_the_frame_shape():
    with pytest.raises(ValueError, match="1920"):
        OpusEncoder().encode(np.zeros(1000, np.float32))


def test_the_browser_muxers_stream_is_accepted(tmp_path):
    """web/ogg.js (the browser's Ogg muxer, run by node) -> our checked decoder."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    pcm = (np.sin(np.arange(6 * FRAME, dtype=np.float32) / 11) * 0.3).astype(np.float32)
    _, packets = read_ogg(b"".join(encoded(pcm)))
    spec = {"packets": [p.hex() for p in packets[2:]], "options": {"serial": 7}, "chunks": True}
    (tmp_path / "in.json").write_text(json.dumps(spec))
    chunks = json.loads(node(TOOLS / "mux.mjs", tmp_path / "in.json", tmp_path / "out.ogg"))
    dec = OpusDecoder()
    out = np.concatenate([dec.append(bytes.fromhex(c)) for c in chunks])
    assert len(out) == len(pcm)


def test_a_48khz_client_stream_is_decoded_at_24khz():
    """A client whose OpusHead says 48 kHz input (a browser's usual rate): Opus packets do
    not depend on it, libopus decodes them at our rate, so the tone and duration survive."""
    import sphn

    rate, seconds, tone = 48000, 2, 440.0
    pcm = (0.3 * np.sin(2 * np.pi * tone * np.arange(rate * seconds) / rate)).astype(np.float32)
    writer, step = sphn.OpusStreamWriter(rate), 2 * FRAME  # 80 ms at 48 kHz
    stream = b"".join(bytes(writer.append_pcm(pcm[i : i + step])) for i in range(0, len(pcm), step))
    head = stream.index(b"OpusHead")
    assert int.from_bytes(stream[head + 12 : head + 16], "little") == rate  # its input rate field
    out = OpusDecoder().append(stream)
    assert len(out) == seconds * 24000
    spectrum = np.abs(np.fft.rfft(out[2400 : 2400 + 24000]))  # 1 s: one bin per Hz
    assert abs(int(np.argmax(spectrum)) - tone) <= 2
