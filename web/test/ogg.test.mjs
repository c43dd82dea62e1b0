import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  HeaderType, OggDemuxer, OggError, OggOpusDemuxer, OggOpusMuxer, concat, crc32, opusHead,
  opusPacketSamples, parseOpusHead, readPage, writePage,
} from "../ogg.js";

// Opus packets with a chosen TOC byte: config 13 (hybrid SWB 20 ms), code 2 -> 2 frames = 40 ms.
const TOC_40MS = 0x6a;
const TOC_20MS = 0xf8; // config 31 (CELT FB 20 ms), code 0
function packet(size, toc = TOC_20MS, seed = size) {
  const p = new Uint8Array(size);
  p[0] = toc;
  for (let i = 1; i < size; i++) p[i] = (seed * 31 + i * 7) & 0xff;
  return p;
}

// Reads every page of a whole stream.
function pages(bytes) {
  const out = [];
  for (let at = 0; at < bytes.length;) {
    const page = readPage(bytes, at);
    assert.ok(page, `truncated page at ${at}`);
    out.push(page);
    at += page.size;
  }
  return out;
}

test("crc32 uses the Ogg polynomial (0x04C11DB7, MSB first, no reflection)", () => {
  // With these parameters (init 0, no reflection, no final xor) "123456789" gives 0x89A1897F.
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0x89a1897f);
  assert.equal(crc32(new Uint8Array(0)), 0);
  assert.equal(crc32(Uint8Array.of(1)), 0x04c11db7);
});

test("crc of a page written by sphn (the shared fixture) checks out", () => {
  const hex = readFileSync(new URL("../../tests/fixtures/protocol/audio_first_page.hex", import.meta.url), "utf8");
  const bytes = Uint8Array.from(hex.replace(/\s+/g, "").match(/../g), (h) => parseInt(h, 16)).subarray(1);
  const ps = pages(bytes);
  assert.equal(ps.length, 4);
  for (const p of ps) assert.ok(p.crcOk, `page ${p.sequence}`);
  assert.equal(ps[0].headerType, HeaderType.BOS);
  assert.deepEqual(ps.map((p) => p.granule), [0n, 0n, 1920n, 3840n]);
  const demux = new OggOpusDemuxer();
  const { head, audio } = demux.push(bytes);
  assert.equal(head.channels, 1);
  assert.deepEqual(audio.map((a) => a.samples), [1920, 1920]);
});

test("a corrupted byte fails the CRC", () => {
  const m = new OggOpusMuxer({ serial: 7 });
  const bytes = concat([m.header(), m.write(packet(50))]);
  bytes[bytes.length - 3] ^= 0x10;
  assert.throws(() => new OggDemuxer().push(bytes), /bad CRC/);
  assert.equal(new OggDemuxer({ checkCrc: false }).push(bytes).packets.length, 3);
});

test("header pages: OpusHead alone on a BOS page, then OpusTags, granule 0", () => {
  const m = new OggOpusMuxer({ serial: 0x1234, preSkip: 312, inputSampleRate: 24000 });
  const ps = pages(m.header());
  assert.equal(ps.length, 2);
  assert.equal(ps[0].headerType, HeaderType.BOS);
  assert.equal(ps[1].headerType, 0);
  assert.deepEqual([ps[0].sequence, ps[1].sequence], [0, 1]);
  assert.deepEqual([ps[0].granule, ps[1].granule], [0n, 0n]);
  assert.equal(ps[0].serial, 0x1234);
  assert.deepEqual(parseOpusHead(ps[0].body), {
    version: 1, channels: 1, preSkip: 312, inputSampleRate: 24000, outputGain: 0, mappingFamily: 0,
  });
  assert.equal(new TextDecoder().decode(ps[1].body.subarray(0, 8)), "OpusTags");
  assert.deepEqual(m.header(), new Uint8Array(0), "headers are written once");
});

test("round trip: packets of many sizes come back identical, in order", () => {
  const sizes = [1, 2, 100, 254, 255, 256, 509, 510, 511, 1000, 4000, 65025, 70000, 3];
  const m = new OggOpusMuxer({ serial: 99 });
  const sent = sizes.map((n) => packet(n));
  const bytes = concat([...sent.map((p) => m.write(p)), m.end()]);
  const { packets } = new OggDemuxer().push(bytes);
  assert.equal(packets.length, sizes.length + 2);
  packets.slice(2).forEach((p, i) => assert.deepEqual(p.data, sent[i], `packet ${i} (${sizes[i]} bytes)`));
});

test("lacing: a 600-byte packet is laced 255, 255, 90; a 510-byte one ends with a 0", () => {
  const m = new OggOpusMuxer({ serial: 1 });
  m.header();
  assert.deepEqual([...readPage(m.write(packet(600))).lacing], [255, 255, 90]);
  assert.deepEqual([...readPage(m.write(packet(510))).lacing], [255, 255, 0]);
  assert.deepEqual([...readPage(m.write(packet(255))).lacing], [255, 0]);
  assert.deepEqual([...readPage(m.write(packet(1))).lacing], [1]);
});

test("packets span pages: CONTINUED flags, granule -1 where no packet ends", () => {
  const m = new OggOpusMuxer({ serial: 5, maxSegmentsPerPage: 4 });
  m.header();
  const big = packet(255 * 9 + 10); // 10 lacing values: 4 + 4 + 2 pages
  const ps = pages(m.write(big));
  assert.equal(ps.length, 3);
  assert.deepEqual(ps.map((p) => p.headerType), [0, HeaderType.CONTINUED, HeaderType.CONTINUED]);
  assert.deepEqual(ps.map((p) => p.granule), [-1n, -1n, 960n]);
  assert.deepEqual(ps.map((p) => [...p.lacing]), [[255, 255, 255, 255], [255, 255, 255, 255], [255, 10]]);
  assert.deepEqual(ps.map((p) => p.sequence), [2, 3, 4]);
});

test("spanning packets survive any chunking of the byte stream", () => {
  const m = new OggOpusMuxer({ serial: 5, maxSegmentsPerPage: 3, packetsPerPage: 3 });
  const sent = [10, 800, 2000, 5, 255, 764, 1].map((n, i) => packet(n, TOC_20MS, i));
  const bytes = concat([...sent.map((p) => m.write(p)), m.end()]);
  for (const step of [1, 7, 27, 100, bytes.length]) {
    const demux = new OggDemuxer();
    const got = [];
    for (let at = 0; at < bytes.length; at += step) got.push(...demux.push(bytes.subarray(at, at + step)).packets);
    assert.equal(got.length, sent.length + 2, `step ${step}`);
    got.slice(2).forEach((p, i) => assert.deepEqual(p.data, sent[i]));
  }
});

test("several packets per page; the page's granule is that of its last packet", () => {
  const m = new OggOpusMuxer({ serial: 3, packetsPerPage: 2 });
  m.header();
  assert.equal(m.write(packet(40)).length, 0, "waits for the second packet");
  const ps = pages(m.write(packet(50)));
  assert.equal(ps.length, 1);
  assert.deepEqual([...ps[0].lacing], [40, 50]);
  assert.equal(ps[0].granule, 1920n);
  assert.equal(m.flush().length, 0, "nothing left to flush");
});

test("granule positions count 48 kHz samples plus the pre-skip", () => {
  const m = new OggOpusMuxer({ serial: 3, preSkip: 312 });
  m.header();
  const got = [];
  for (const toc of [TOC_20MS, TOC_40MS, TOC_20MS, TOC_40MS]) got.push(readPage(m.write(packet(30, toc))).granule);
  assert.deepEqual(got, [312n + 960n, 312n + 2880n, 312n + 3840n, 312n + 5760n]);
  const eos = readPage(m.end());
  assert.equal(eos.headerType, HeaderType.EOS);
  assert.equal(eos.granule, 312n + 5760n);
});

test("opusPacketSamples reads the TOC byte (RFC 6716 §3.1)", () => {
  assert.equal(opusPacketSamples(Uint8Array.of(0x00)), 480); // SILK NB 10 ms
  assert.equal(opusPacketSamples(Uint8Array.of(0x18)), 2880); // SILK NB 60 ms
  assert.equal(opusPacketSamples(Uint8Array.of(0x6a, 0)), 1920); // hybrid SWB 20 ms x2
  assert.equal(opusPacketSamples(Uint8Array.of(0x80)), 120); // CELT NB 2.5 ms
  assert.equal(opusPacketSamples(Uint8Array.of(0xfb, 0x03)), 2880); // CELT FB 20 ms, code 3, 3 frames
  assert.throws(() => opusPacketSamples(Uint8Array.of(0xfb, 0x07)), OggError); // 140 ms > 120
  assert.throws(() => opusPacketSamples(Uint8Array.of(0xfb)), OggError);
  assert.throws(() => opusPacketSamples(new Uint8Array(0)), OggError);
});

test("demuxer: bytes that are not Ogg are an error; a partial page waits", () => {
  assert.throws(() => new OggDemuxer().push(new TextEncoder().encode("garbage in the stream here....")), OggError);
  const page = writePage({ serial: 1, sequence: 0, lacing: [3], body: Uint8Array.of(1, 2, 3) });
  const d = new OggDemuxer();
  assert.equal(d.push(page.subarray(0, 20)).pages.length, 0);
  assert.equal(d.push(page.subarray(20, 29)).pages.length, 0);
  const { pages: ps, packets } = d.push(page.subarray(29));
  assert.equal(ps.length, 1);
  assert.deepEqual(packets[0].data, Uint8Array.of(1, 2, 3));
});

test("demuxer drops the tail of a packet whose start it never saw", () => {
  const m = new OggOpusMuxer({ serial: 5, maxSegmentsPerPage: 2 });
  m.header();
  const bytes = concat([m.write(packet(700)), m.write(packet(20))]);
  const ps = pages(bytes);
  const fromSecond = bytes.subarray(ps[0].size); // join mid-packet
  const { packets } = new OggDemuxer().push(fromSecond);
  assert.equal(packets.length, 1);
  assert.equal(packets[0].data.length, 20);
});

test("OggOpusDemuxer: head, tags, then audio with start times", () => {
  const m = new OggOpusMuxer({ serial: 2, inputSampleRate: 24000 });
  const bytes = concat([m.write(packet(20, TOC_40MS)), m.write(packet(20, TOC_20MS))]);
  const demux = new OggOpusDemuxer();
  const { head, audio } = demux.push(bytes);
  assert.equal(head.inputSampleRate, 24000);
  assert.deepEqual(audio.map((a) => [a.samples, a.start]), [[1920, 0], [960, 1920]]);
  assert.throws(() => new OggOpusDemuxer().push(m.write(packet(20))), /OpusHead/);
});

test("opusHead layout", () => {
  const head = opusHead({ channels: 1, preSkip: 3840, inputSampleRate: 48000 });
  assert.equal(Buffer.from(head).toString("hex"), "4f707573486561640101000f80bb0000000000");
});
