"""The websocket wire format: round trips, the shared fixture messages, and fuzzing."""

import contextlib
import json
import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moshi.stream.protocol import (
    HANDSHAKE,
    MAX_MESSAGE_BYTES,
    Control,
    Message,
    MessageKind,
    decode,
    encode,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "protocol"
INDEX = json.loads((FIXTURES / "index.json").read_text())["messages"]


def read_hex(name: str) -> bytes:
    return bytes.fromhex("".join((FIXTURES / name).read_text().split()))


def test_handshake_is_one_zero_byte():
    assert HANDSHAKE == b"\x00"
    assert encode(MessageKind.HANDSHAKE) == HANDSHAKE
    assert decode(HANDSHAKE) == Message(MessageKind.HANDSHAKE, b"")


def test_kind_bytes_are_kyutais():
    assert {k.name: k.value for k in MessageKind} == {
        "HANDSHAKE": 0,
        "AUDIO": 1,
        "TEXT": 2,
        "CONTROL": 3,
        "METADATA": 4,
        "ERROR": 5,
        "PING": 6,
    }


@pytest.mark.parametrize(
    "kind, payload, wire",
    [
        (MessageKind.AUDIO, b"OggS\x00", b"\x01OggS\x00"),
        (MessageKind.TEXT, " Bonjour", b"\x02 Bonjour"),
        (MessageKind.TEXT, "é", b"\x02\xc3\xa9"),
        (MessageKind.CONTROL, Control.END_TURN, b"\x03\x01"),
        (MessageKind.METADATA, {"a": 1}, b'\x04{"a":1}'),
        (MessageKind.ERROR, "server busy", b"\x05server busy"),
        (MessageKind.PING, b"", b"\x06"),
    ],
)
def test_encode_decode(kind, payload, wire):
    assert encode(kind, payload) == wire
    msg = decode(wire)
    assert msg == Message(kind, payload)
    assert msg.known and type(msg.kind) is MessageKind


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_shared_fixture(entry):
    data = read_hex(entry["file"])
    if entry.get("error"):
        with pytest.raises(ValueError):
            decode(data)
        return
    msg = decode(data)
    assert msg.kind == entry["kind"]
    assert msg.known == (not entry.get("unknown", False))
    if "text" in entry:
        assert msg.payload == entry["text"]
    elif "json" in entry:
        assert msg.payload == entry["json"]
    elif "control" in entry:
        assert msg.payload == Control(entry["control"])
    else:
        assert msg.payload == bytes.fromhex(entry["payload_hex"])
    if msg.known:  # what we decode, we encode back to the same bytes
        assert encode(msg.kind, msg.payload) == data


def test_fixtures_cover_every_kind():
    kinds = {e["kind"] for e in INDEX if not e.get("error") and not e.get("unknown")}
    assert kinds == {k.value for k in MessageKind}
    listed = {e["file"] for e in INDEX}
    assert listed == {p.name for p in FIXTURES.glob("*.hex")}


def test_unknown_kind_is_returned_raw():
    msg = decode(b"\x09\x01\x02")
    assert not msg.known
    assert msg.kind == 9 and msg.payload == b"\x01\x02"


@pytest.mark.parametrize(
    "wire, match",
    [
        (b"", "empty"),
        (b"\x02\xff", "UTF-8"),
        (b"\x03", "CONTROL"),
        (b"\x03\x04", "CONTROL"),
        (b"\x04[]", "object"),
        (b"\x04{", "JSON"),
        (b'\x04{"a": Infinity}', "JSON"),
        (b"\x04" + b"[" * 60_000, "nested too deeply"),  # deep nesting must not escape as RecursionError
        (b"\x01" + bytes(MAX_MESSAGE_BYTES), "exceeds"),
    ],
)
def test_decode_rejects(wire, match):
    with pytest.raises(ValueError, match=match):
        decode(wire)


def test_decode_rejects_text_frames():
    with pytest.raises(ValueError, match="binary"):
        decode("\x02hello")  # type: ignore[arg-type]


def test_encode_rejects():
    with pytest.raises(TypeError, match="TEXT payload must be"):
        encode(MessageKind.TEXT, b"bytes")
    with pytest.raises(TypeError, match="AUDIO payload must be"):
        encode(MessageKind.AUDIO, "text")
    with pytest.raises(ValueError, match="unknown message kind"):
        encode(7, b"")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        encode(MessageKind.CONTROL, 9)
    with pytest.raises(ValueError, match=r"NaN|Out of range"):
        encode(MessageKind.METADATA, {"x": float("nan")})
    with pytest.raises(ValueError, match="exceeds"):
        encode(MessageKind.AUDIO, bytes(MAX_MESSAGE_BYTES))
    assert len(encode(MessageKind.AUDIO, bytes(MAX_MESSAGE_BYTES - 1))) == MAX_MESSAGE_BYTES


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
payloads = st.one_of(
    st.tuples(st.just(MessageKind.AUDIO), st.binary(max_size=2048)),
    st.tuples(st.sampled_from([MessageKind.TEXT, MessageKind.ERROR]), st.text(max_size=200)),
    st.tuples(st.just(MessageKind.CONTROL), st.sampled_from(list(Control))),
    st.tuples(st.just(MessageKind.METADATA), st.dictionaries(st.text(max_size=10), json_values, max_size=5)),
    st.tuples(st.sampled_from([MessageKind.HANDSHAKE]), st.binary(max_size=8)),
    st.tuples(st.just(MessageKind.PING), st.just(b"")),
)


@given(payloads)
def test_round_trip(kind_payload):
    kind, payload = kind_payload
    wire = encode(kind, payload)
    assert wire[0] == kind
    assert decode(wire) == Message(kind, payload)


@settings(max_examples=500)
@given(st.binary(max_size=512))
def test_decode_fuzz_raises_only_value_error(data):
    try:
        msg = decode(data)
    except ValueError:
        return
    assert isinstance(msg.kind, int) and 0 <= msg.kind <= 255
    if msg.known:
        assert encode(msg.kind, msg.payload) == data or msg.kind == MessageKind.METADATA


@settings(max_examples=300)
@given(st.sampled_from(list(MessageKind)), st.text(alphabet=string.printable + 'é▁👋{}[]":,', max_size=64))
def test_decode_fuzz_structured(kind, text):
    """Random text behind each kind byte: mostly-valid payloads reach the JSON/UTF-8 paths."""
    with contextlib.suppress(ValueError):
        decode(bytes([kind]) + text.encode())


def test_the_web_client_has_the_same_constants():
    """web/protocol.js mirrors this module: the route, the limits and the chat URL's parameters."""
    from moshi.stream import protocol

    js = (Path(__file__).parents[2] / "web" / "protocol.js").read_text()

    def const(name: str) -> str:
        found = re.search(rf"^export const {name} = (.*?);$", js, flags=re.S | re.M)
        assert found, f"web/protocol.js has no {name}"
        return found.group(1)

    assert re.findall(r'"(\w+)"', const("QUERY_PARAMS")) == list(protocol.QUERY_PARAMS)
    assert const("AUTH_PARAM") == json.dumps(protocol.AUTH_PARAM)
    assert const("CHAT_PATH") == json.dumps(protocol.CHAT_PATH)
    assert eval(const("MAX_MESSAGE_BYTES")) == protocol.MAX_MESSAGE_BYTES
    assert int(const("PROTOCOL_VERSION")) == protocol.PROTOCOL_VERSION
