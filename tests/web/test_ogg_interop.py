"""The browser's Ogg code (web/ogg.js, run by node) against sphn, the server's Ogg/Opus.

Both directions: sphn's stream parsed by the JS demuxer, and the JS muxer's pages read and
decoded by sphn. Also runs the JS unit tests (`node --test`), so `pytest` covers them.
"""

import json

import numpy as np
import pytest
import sphn

from moshi.audio import FRAME_SIZE, SAMPLE_RATE
from tests.support.ogg import ROOT, TOOLS, node, read_ogg

N_FRAMES = 12
SAMPLES_48K_PER_FRAME = FRAME_SIZE * 48_000 // SAMPLE_RATE


def speechlike(n_frames: int, seed: int = 0) -> np.ndarray:
    """A few seconds of a gliding, amplitude-modulated tone with noise: [n_frames * FRAME_SIZE]."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames * FRAME_SIZE) / SAMPLE_RATE
    pitch = 140 + 60 * np.sin(2 * np.pi * 0.7 * t)
    tone = np.sin(2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (0.3 * tone + 0.02 * rng.standard_normal(t.shape)).astype(np.float32)


def sphn_messages(pcm: np.ndarray) -> list[bytes]:
    """What our server sends: one `append_pcm` per 80 ms frame (float32, 1-D, 1920 samples)."""
    writer = sphn.OpusStreamWriter(SAMPLE_RATE)
    return [writer.append_pcm(frame) for frame in pcm.reshape(-1, FRAME_SIZE)]


def sphn_decode(messages: list[bytes]) -> np.ndarray:
    reader = sphn.OpusStreamReader(SAMPLE_RATE)
    out = [reader.append_bytes(m) for m in messages]
    return np.concatenate([np.asarray(o, dtype=np.float32).reshape(-1) for o in out])


def pad_opus_packet(packet: bytes, size: int) -> bytes:
    """The same audio as a code-3 Opus packet of exactly `size` bytes, by adding padding
    (RFC 6716 §3.2.5): decoders ignore it, so this makes long packets out of real ones."""
    toc, code = packet[0], packet[0] & 3
    assert code in (0, 1, 2), "sphn's packets use codes 0-2"
    frames, vbr = (1, 0) if code == 0 else (2, 0) if code == 1 else (2, 1)
    body = packet[1:]  # code 0/1: frame data; code 2: frame 1 length, then both frames
    for padding in range(size):
        length_bytes = bytes([255] * (padding // 254) + [padding % 254])
        if 2 + len(length_bytes) + len(body) + padding == size:
            head = bytes([toc | 3, (vbr << 7) | (1 << 6) | frames]) + length_bytes
            return head + body + bytes(padding)
    raise ValueError(f"cannot pad a {len(packet)}-byte packet to {size} bytes")


@pytest.fixture(scope="module")
def sphn_stream() -> tuple[np.ndarray, list[bytes]]:
    pcm = speechlike(N_FRAMES)
    return pcm, sphn_messages(pcm)


def test_node_unit_tests():
    tests = sorted((ROOT / "web" / "test").glob("*.test.mjs"))
    assert tests, "no web/test/*.test.mjs found"
    out = node("--test", *tests)
    assert "# fail 0" in out


def test_js_demuxes_sphn_output(sphn_stream, tmp_path):
    _, messages = sphn_stream
    stream = b"".join(messages)
    (tmp_path / "sphn.ogg").write_bytes(stream)
    got = json.loads(node(TOOLS / "demux.mjs", tmp_path / "sphn.ogg"))

    py_pages, py_packets = read_ogg(stream)
    assert [bytes.fromhex(p["hex"]) for p in got["packets"]] == py_packets
    assert py_packets[0].startswith(b"OpusHead") and py_packets[1].startswith(b"OpusTags")
    assert got["head"]["channels"] == 1 and got["head"]["version"] == 1
    assert all(p["crcOk"] for p in got["pages"])
    assert [int(p["granule"]) for p in got["pages"]] == [p["granule"] for p in py_pages]
    assert [p["sequence"] for p in got["pages"]] == list(range(len(py_pages)))

    # sphn writes 40 ms packets: two per 80 ms frame; durations read from each TOC byte
    audio = got["audio"]
    assert len(audio) == len(py_packets) - 2 == 2 * N_FRAMES
    assert sum(a["samples"] for a in audio) == N_FRAMES * SAMPLES_48K_PER_FRAME
    assert int(got["pages"][-1]["granule"]) == N_FRAMES * SAMPLES_48K_PER_FRAME


@pytest.mark.parametrize(
    "options, pad_to",
    [
        ({}, None),  # one packet per page, as the browser sends them
        ({"packetsPerPage": 3}, None),
        ({"preSkip": 312}, None),
        ({}, 700),  # packets over 255 bytes: several lacing values each
        ({"maxSegmentsPerPage": 2, "packetsPerPage": 2}, 600),  # and spanning pages
    ],
    ids=["1-per-page", "3-per-page", "pre-skip", "long-packets", "spanning-pages"],
)
def test_sphn_reads_js_mux(sphn_stream, tmp_path, options, pad_to):
    pcm, messages = sphn_stream
    _, packets = read_ogg(b"".join(messages))
    audio_packets = packets[2:]
    if pad_to:
        audio_packets = [pad_opus_packet(p, pad_to) for p in audio_packets]
    spec = {
        "packets": [p.hex() for p in audio_packets],
        "options": {"serial": 1234, **options},
        "chunks": True,
    }
    (tmp_path / "in.json").write_text(json.dumps(spec))
    chunks = [
        bytes.fromhex(c)
        for c in json.loads(node(TOOLS / "mux.mjs", tmp_path / "in.json", tmp_path / "out.ogg"))
    ]
    stream = (tmp_path / "out.ogg").read_bytes()
    assert b"".join(chunks) == stream

    pages, js_packets = read_ogg(stream)  # CRCs checked here
    assert js_packets[0].startswith(b"OpusHead") and js_packets[1].startswith(b"OpusTags")
    assert js_packets[2:] == audio_packets
    assert pages[0]["type"] == 2 and pages[-1]["type"] & 4, "BOS first, EOS last"
    pre_skip = options.get("preSkip", 0)
    assert pages[-1]["granule"] == pre_skip + N_FRAMES * SAMPLES_48K_PER_FRAME
    if pad_to and "maxSegmentsPerPage" in options:
        assert any(p["type"] & 1 for p in pages), "some packet continues on the next page"

    # Fed to sphn message by message, as our server receives them from the browser.
    decoded = sphn_decode([c for c in chunks if c])
    reference = sphn_decode(messages)
    assert abs(len(decoded) - len(pcm)) <= FRAME_SIZE // 2, (len(decoded), len(pcm))
    np.testing.assert_allclose(decoded[: len(reference)], reference[: len(decoded)], atol=1e-6)
    assert np.abs(decoded).max() > 0.05, "decoded audio is not silence"
