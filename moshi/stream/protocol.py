"""The websocket wire format, defined once (mirrored by `web/protocol.js`).

Every websocket message is binary: one kind byte, then a payload. This is Kyutai's framing,
kept byte for byte so their clients and ours interoperate:

    byte  kind       payload                                   direction
    0x00  HANDSHAKE  empty (Kyutai's Rust server: 8 zero bytes) server -> client, once
    0x01  AUDIO      Ogg pages of a 24 kHz mono Opus stream     both
    0x02  TEXT       UTF-8 text piece                           server -> client
    0x03  CONTROL    one byte, a `Control` value                either (unused in full duplex)
    0x04  METADATA   UTF-8 JSON object                          server -> client
    0x05  ERROR      UTF-8 message for a person                 server -> client
    0x06  PING       empty (any bytes are accepted)             either (unused)

- The server sends exactly `HANDSHAKE` (the single byte 0x00) when the conversation
  starts; clients wait for it before sending audio. A longer handshake (Kyutai's Rust
  server appends a u32 protocol version and a u32 model version, both 0) is accepted.
- The first AUDIO message of each direction carries the OpusHead and OpusTags pages.
- A kind this version does not know decodes to a `Message` whose `known` is False; callers
  ignore it (Kyutai's Rust server also sends 0x07 colored text, 0x08 image, 0x09 codes).
- Any malformed message raises `ValueError` from `decode`, and nothing else does.

`PROTOCOL_VERSION` names this layout. The handshake itself carries no version byte, so that
Kyutai's clients (which expect the one-byte handshake) work unchanged; a future layout
would announce itself in a METADATA message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

PROTOCOL_VERSION = 0
HANDSHAKE = b"\x00"
# Abuse limit for one message, kind byte included. One 80 ms Ogg/Opus page is ~0.3 KB, so
# this is ~20 s of audio at 24 kbit/s: far beyond any real-time client, small enough to cap.
MAX_MESSAGE_BYTES = 64 * 1024

# The websocket route, and the query parameters Kyutai's web client already sends that we
# honour (the server validates their ranges), each with the `SamplingOptions` field it sets;
# `AUTH_PARAM` carries an optional token. web/protocol.js lists the same (a test checks).
CHAT_PATH = "/api/chat"
QUERY_PARAMS = {
    "text_temperature": "temp_text",
    "text_topk": "top_k_text",
    "audio_temperature": "temp",
    "audio_topk": "top_k",
    "text_seed": "text_seed",
    "audio_seed": "audio_seed",
}
AUTH_PARAM = "auth_token"


class MessageKind(IntEnum):
    HANDSHAKE = 0x00
    AUDIO = 0x01
    TEXT = 0x02
    CONTROL = 0x03
    METADATA = 0x04
    ERROR = 0x05
    PING = 0x06


class Control(IntEnum):
    START = 0
    END_TURN = 1
    PAUSE = 2
    RESTART = 3


Payload = bytes | str | dict[str, Any] | Control


@dataclass(frozen=True)
class Message:
    """A decoded message.

    `kind` is a `MessageKind`, or the raw byte of a kind this version does not know (then
    `payload` is the raw bytes). `payload` is `str` for TEXT and ERROR, a `dict` for
    METADATA, a `Control` for CONTROL, and `bytes` for the rest.
    """

    kind: int
    payload: Payload

    @property
    def known(self) -> bool:
        return isinstance(self.kind, MessageKind)


_KINDS = {k.value: k for k in MessageKind}


def encode(kind: MessageKind, payload: Payload = b"") -> bytes:
    """The bytes of one message. Raises `TypeError` for a payload of the wrong type and
    `ValueError` for an invalid value or a message over `MAX_MESSAGE_BYTES`."""
    if kind not in _KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    kind = MessageKind(kind)
    if kind in (MessageKind.TEXT, MessageKind.ERROR):
        body = _expect(kind, payload, str).encode("utf-8")
    elif kind == MessageKind.METADATA:
        obj = _expect(kind, payload, dict)
        body = json.dumps(obj, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
    elif kind == MessageKind.CONTROL:
        body = bytes([Control(_expect(kind, payload, int))])
    else:
        body = bytes(_expect(kind, payload, (bytes, bytearray, memoryview)))
    if 1 + len(body) > MAX_MESSAGE_BYTES:
        raise ValueError(f"{kind.name} message of {1 + len(body)} bytes exceeds {MAX_MESSAGE_BYTES}")
    return bytes([kind]) + body


def decode(message: bytes | bytearray | memoryview | str) -> Message:
    """Parse one websocket message. Raises `ValueError` (only) if it is malformed."""
    if isinstance(message, str):
        raise ValueError("expected a binary message, got a text frame")
    data = bytes(message)
    if not data:
        raise ValueError("empty message")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    kind, body = _KINDS.get(data[0], data[0]), data[1:]
    if kind == MessageKind.TEXT or kind == MessageKind.ERROR:
        return Message(kind, _utf8(MessageKind(kind), body))
    if kind == MessageKind.METADATA:
        return Message(kind, _json_object(body))
    if kind == MessageKind.CONTROL:
        if len(body) != 1 or body[0] not in Control._value2member_map_:
            raise ValueError(f"CONTROL payload must be one byte in 0..{len(Control) - 1}, got {body.hex()}")
        return Message(kind, Control(body[0]))
    return Message(kind, body)


def _expect(kind: MessageKind, payload: object, types: type | tuple[type, ...]) -> Any:
    if not isinstance(payload, types):
        raise TypeError(f"{kind.name} payload must be {types}, got {type(payload).__name__}")
    return payload


def _utf8(kind: MessageKind, body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{kind.name} payload is not valid UTF-8: {e}") from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _json_object(body: bytes) -> dict[str, Any]:
    text = _utf8(MessageKind.METADATA, body)
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("METADATA JSON is nested too deeply") from None
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"METADATA payload is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"METADATA payload must be a JSON object, got {type(obj).__name__}")
    return obj
