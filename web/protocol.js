// The websocket wire format: a mirror of moshi/stream/protocol.py (the spec lives there).
// One kind byte, then the payload. Both sides decode tests/fixtures/protocol/*.hex in tests.

export const PROTOCOL_VERSION = 0;
export const MAX_MESSAGE_BYTES = 64 * 1024;
export const CHAT_PATH = "/api/chat";
export const QUERY_PARAMS = Object.freeze([
  "text_temperature", "text_topk", "audio_temperature", "audio_topk", "text_seed", "audio_seed",
]);
export const AUTH_PARAM = "auth_token";

export const MessageKind = Object.freeze({
  HANDSHAKE: 0x00,
  AUDIO: 0x01,
  TEXT: 0x02,
  CONTROL: 0x03,
  METADATA: 0x04,
  ERROR: 0x05,
  PING: 0x06,
});

export const Control = Object.freeze({ START: 0, END_TURN: 1, PAUSE: 2, RESTART: 3 });

/** Raised (only) for malformed messages, like Python's ValueError. */
export class ProtocolError extends Error {
  constructor(message) {
    super(message);
    this.name = "ProtocolError";
  }
}

const KNOWN = new Set(Object.values(MessageKind));
const NAMES = Object.fromEntries(Object.entries(MessageKind).map(([k, v]) => [v, k]));
// fatal: reject invalid UTF-8 as Python's strict decoder does; ignoreBOM: keep a leading
// U+FEFF as text (Python does not strip it either).
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

function toBytes(message) {
  if (message instanceof Uint8Array) return message;
  if (message instanceof ArrayBuffer) return new Uint8Array(message);
  if (ArrayBuffer.isView(message)) {
    return new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
  }
  throw new ProtocolError(`expected a binary message, got ${typeof message}`);
}

function utf8(kind, body) {
  try {
    return utf8Decoder.decode(body);
  } catch {
    throw new ProtocolError(`${NAMES[kind]} payload is not valid UTF-8`);
  }
}

/**
 * Parse one message into {kind, payload, known}. payload is a string (TEXT, ERROR), an
 * object (METADATA), a number (CONTROL) or a Uint8Array (others, and unknown kinds).
 */
export function decode(message) {
  const data = toBytes(message);
  if (data.length === 0) throw new ProtocolError("empty message");
  if (data.length > MAX_MESSAGE_BYTES) {
    throw new ProtocolError(`message of ${data.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  }
  const kind = data[0];
  const body = data.subarray(1);
  const known = KNOWN.has(kind);
  switch (kind) {
    case MessageKind.TEXT:
    case MessageKind.ERROR:
      return { kind, known, payload: utf8(kind, body) };
    case MessageKind.METADATA: {
      let obj;
      try {
        obj = JSON.parse(utf8(kind, body));
      } catch (e) {
        if (e instanceof ProtocolError) throw e;
        throw new ProtocolError(`METADATA payload is not JSON: ${e.message}`);
      }
      if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
        throw new ProtocolError("METADATA payload must be a JSON object");
      }
      return { kind, known, payload: obj };
    }
    case MessageKind.CONTROL:
      if (body.length !== 1 || body[0] > Control.RESTART) {
        throw new ProtocolError("CONTROL payload must be one byte in 0..3");
      }
      return { kind, known, payload: body[0] };
    default:
      return { kind, known, payload: body };
  }
}

/** The bytes of one message (a Uint8Array). */
export function encode(kind, payload = new Uint8Array(0)) {
  if (!KNOWN.has(kind)) throw new ProtocolError(`unknown message kind ${kind}`);
  let body;
  if (kind === MessageKind.TEXT || kind === MessageKind.ERROR) {
    if (typeof payload !== "string") throw new TypeError(`${NAMES[kind]} payload must be a string`);
    body = utf8Encoder.encode(payload);
  } else if (kind === MessageKind.METADATA) {
    if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
      throw new TypeError("METADATA payload must be a plain object");
    }
    body = utf8Encoder.encode(JSON.stringify(payload));
  } else if (kind === MessageKind.CONTROL) {
    if (!Number.isInteger(payload) || payload < 0 || payload > Control.RESTART) {
      throw new ProtocolError(`bad CONTROL value ${payload}`);
    }
    body = Uint8Array.of(payload);
  } else {
    body = toBytes(payload);
  }
  if (1 + body.length > MAX_MESSAGE_BYTES) {
    throw new ProtocolError(`${NAMES[kind]} message of ${1 + body.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  }
  const out = new Uint8Array(1 + body.length);
  out[0] = kind;
  out.set(body, 1);
  return out;
}

/** Build the chat websocket URL for a page location and a settings object. */
export function chatUrl(location, settings = {}) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams();
  for (const name of [...QUERY_PARAMS, AUTH_PARAM]) {
    const value = settings[name];
    if (value !== undefined && value !== null && String(value).trim() !== "") {
      params.set(name, String(value).trim());
    }
  }
  const query = params.toString();
  return `${scheme}//${location.host}${CHAT_PATH}${query ? `?${query}` : ""}`;
}
