import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { OggOpusDemuxer } from "../ogg.js";
import { Control, MAX_MESSAGE_BYTES, MessageKind, ProtocolError, chatUrl, decode, encode } from "../protocol.js";

const FIXTURES = new URL("../../tests/fixtures/protocol/", import.meta.url);
const INDEX = JSON.parse(readFileSync(new URL("index.json", FIXTURES), "utf8")).messages;
const readHex = (name) => Buffer.from(readFileSync(new URL(name, FIXTURES), "utf8").replace(/\s+/g, ""), "hex");
const hex = (bytes) => Buffer.from(bytes).toString("hex");

for (const entry of INDEX) {
  test(`shared fixture ${entry.file}`, () => {
    const data = new Uint8Array(readHex(entry.file));
    if (entry.error) {
      assert.throws(() => decode(data), ProtocolError);
      return;
    }
    const msg = decode(data.buffer.slice(data.byteOffset, data.byteOffset + data.length)); // as an ArrayBuffer
    assert.equal(msg.kind, entry.kind);
    assert.equal(msg.known, !entry.unknown);
    if ("text" in entry) assert.equal(msg.payload, entry.text);
    else if ("json" in entry) assert.deepEqual(msg.payload, entry.json);
    else if ("control" in entry) assert.equal(msg.payload, entry.control);
    else assert.equal(hex(msg.payload), entry.payload_hex);
    if (msg.known) assert.equal(hex(encode(msg.kind, msg.payload)), hex(data), "encodes back to the same bytes");
    if (entry.ogg) {
      const { head, audio } = new OggOpusDemuxer().push(msg.payload);
      assert.ok(head, "OpusHead first");
      assert.equal(audio.length + 2, entry.ogg.packets);
      assert.equal(audio.reduce((n, a) => n + a.samples, 0), entry.ogg.audio_samples_48k);
    }
  });
}

test("the handshake is one zero byte", () => {
  assert.deepEqual(encode(MessageKind.HANDSHAKE), Uint8Array.of(0));
  assert.equal(decode(Uint8Array.of(0)).kind, MessageKind.HANDSHAKE);
});

test("round trips", () => {
  const cases = [
    [MessageKind.AUDIO, Uint8Array.of(0x4f, 0x67, 0x67, 0x53)],
    [MessageKind.TEXT, " Bonjour ▁ 👋"],
    [MessageKind.ERROR, "server busy"],
    [MessageKind.METADATA, { a: [1, 2, { b: "é" }], c: null }],
    [MessageKind.CONTROL, Control.PAUSE],
    [MessageKind.PING, new Uint8Array(0)],
  ];
  for (const [kind, payload] of cases) {
    const msg = decode(encode(kind, payload));
    assert.equal(msg.kind, kind);
    assert.deepEqual(msg.payload, payload);
  }
});

test("encode refuses what the wire cannot carry", () => {
  assert.throws(() => encode(7, new Uint8Array(0)), ProtocolError);
  assert.throws(() => encode(MessageKind.TEXT, Uint8Array.of(1)), TypeError);
  assert.throws(() => encode(MessageKind.CONTROL, 4), ProtocolError);
  assert.throws(() => encode(MessageKind.AUDIO, new Uint8Array(MAX_MESSAGE_BYTES)), ProtocolError);
  assert.equal(encode(MessageKind.AUDIO, new Uint8Array(MAX_MESSAGE_BYTES - 1)).length, MAX_MESSAGE_BYTES);
});

test("decode rejects text frames and oversized messages", () => {
  assert.throws(() => decode("\u0002hi"), ProtocolError);
  assert.throws(() => decode(new Uint8Array(MAX_MESSAGE_BYTES + 1)), ProtocolError);
  assert.throws(() => decode(Uint8Array.of(4, ...Buffer.from("[".repeat(50000)))), ProtocolError);
});

test("fuzz: random bytes decode or throw ProtocolError, nothing else", () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const alphabet = Buffer.from('{}[]":,0123456789abcnulltrue é');
  for (let i = 0; i < 5000; i++) {
    const n = Math.floor(rand() * 40);
    const data = new Uint8Array(n);
    for (let j = 0; j < n; j++) data[j] = j > 0 && rand() < 0.5 ? alphabet[Math.floor(rand() * alphabet.length)] : rand() * 256;
    if (n > 0 && rand() < 0.5) data[0] = Math.floor(rand() * 8);
    try {
      const msg = decode(data);
      assert.ok(Number.isInteger(msg.kind) && msg.kind >= 0 && msg.kind <= 255);
    } catch (e) {
      assert.ok(e instanceof ProtocolError, `${hex(data)}: ${e}`);
    }
  }
});

test("chatUrl: ws or wss like the page, only the known settings, empty ones left out", () => {
  const settings = { text_temperature: "0.7", text_topk: 25, audio_seed: "", auth_token: "s3cret&x", other: "no" };
  assert.equal(
    chatUrl({ protocol: "https:", host: "gpu.example:8998" }, settings),
    "wss://gpu.example:8998/api/chat?text_temperature=0.7&text_topk=25&auth_token=s3cret%26x",
  );
  assert.equal(chatUrl({ protocol: "http:", host: "localhost:8998" }), "ws://localhost:8998/api/chat");
});
