// Ogg pages (RFC 3533) carrying one Opus stream (RFC 7845), both ways, for the browser
// and for node. The server (sphn) sends and expects exactly this: OpusHead page (BOS),
// OpusTags page, then audio pages whose granule position counts 48 kHz samples.
//
// Page header (27 bytes, little-endian), then `segments` lacing values, then the body:
//   "OggS" | version 0 | header type | granule i64 | serial u32 | sequence u32 | crc u32 | segments u8
// A packet is laced as floor(len/255) values of 255 then one value len % 255 (< 255): a
// lacing value of 255 means "the packet goes on". A packet may go on into the next page,
// which then has the CONTINUED flag.

export const HeaderType = Object.freeze({ CONTINUED: 1, BOS: 2, EOS: 4 });
const CAPTURE = [0x4f, 0x67, 0x67, 0x53]; // "OggS"
const HEADER_BYTES = 27;
const MAX_SEGMENTS = 255;
export const OPUS_RATE = 48000; // granule positions and TOC durations are always at 48 kHz

export class OggError extends Error {
  constructor(message) {
    super(message);
    this.name = "OggError";
  }
}

// ---- CRC-32 as Ogg defines it: polynomial 0x04C11DB7, MSB first, init 0, no final xor.
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let bit = 0; bit < 8; bit++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

export function crc32(bytes, crc = 0) {
  for (let i = 0; i < bytes.length; i++) {
    crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ bytes[i]) & 0xff]) >>> 0;
  }
  return crc >>> 0;
}

// ---- One page.

/** Serialize a page. `lacing` is the list of lacing values; `body` their concatenated data. */
export function writePage({ headerType = 0, granule = -1n, serial, sequence, lacing, body }) {
  if (lacing.length > MAX_SEGMENTS) throw new OggError(`${lacing.length} segments in one page`);
  const page = new Uint8Array(HEADER_BYTES + lacing.length + body.length);
  const view = new DataView(page.buffer);
  page.set(CAPTURE, 0);
  page[4] = 0; // stream structure version
  page[5] = headerType;
  view.setBigInt64(6, BigInt(granule), true);
  view.setUint32(14, serial >>> 0, true);
  view.setUint32(18, sequence >>> 0, true);
  page[26] = lacing.length;
  page.set(lacing, HEADER_BYTES);
  page.set(body, HEADER_BYTES + lacing.length);
  view.setUint32(22, crc32(page), true); // computed with the CRC field still zero
  return page;
}

/**
 * Parse the page starting at `offset`. Returns null if `data` holds only part of it.
 * Result: {headerType, granule (BigInt), serial, sequence, crc, crcOk, lacing, body, size}.
 */
export function readPage(data, offset = 0) {
  if (data.length - offset < HEADER_BYTES) return null;
  for (let i = 0; i < 4; i++) {
    if (data[offset + i] !== CAPTURE[i]) throw new OggError(`no "OggS" capture pattern at byte ${offset}`);
  }
  if (data[offset + 4] !== 0) throw new OggError(`unsupported Ogg version ${data[offset + 4]}`);
  const nseg = data[offset + 26];
  if (data.length - offset < HEADER_BYTES + nseg) return null;
  const lacing = data.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + nseg);
  const bodyLength = lacing.reduce((a, b) => a + b, 0);
  const size = HEADER_BYTES + nseg + bodyLength;
  if (data.length - offset < size) return null;
  const view = new DataView(data.buffer, data.byteOffset + offset, size);
  const crc = view.getUint32(22, true);
  const copy = data.slice(offset, offset + size);
  copy.fill(0, 22, 26);
  return {
    headerType: data[offset + 5],
    granule: view.getBigInt64(6, true),
    serial: view.getUint32(14, true),
    sequence: view.getUint32(18, true),
    crc,
    crcOk: crc32(copy) === crc,
    lacing,
    body: data.subarray(offset + HEADER_BYTES + nseg, offset + size),
    size,
  };
}

// ---- Opus headers (RFC 7845 §5) and packet durations (RFC 6716 §3.1).

const ascii = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const startsWith = (bytes, magic) => bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
const OPUS_HEAD = ascii("OpusHead");
const OPUS_TAGS = ascii("OpusTags");

export const isOpusHead = (packet) => startsWith(packet, OPUS_HEAD);
export const isOpusTags = (packet) => startsWith(packet, OPUS_TAGS);

export function opusHead({ channels = 1, preSkip = 0, inputSampleRate = 24000, outputGain = 0 } = {}) {
  const head = new Uint8Array(19);
  const view = new DataView(head.buffer);
  head.set(OPUS_HEAD, 0);
  head[8] = 1; // version
  head[9] = channels;
  view.setUint16(10, preSkip, true);
  view.setUint32(12, inputSampleRate, true);
  view.setInt16(16, outputGain, true);
  head[18] = 0; // channel mapping family 0: mono or stereo
  return head;
}

export function parseOpusHead(packet) {
  if (!isOpusHead(packet) || packet.length < 19) throw new OggError("not an OpusHead packet");
  const view = new DataView(packet.buffer, packet.byteOffset, packet.length);
  return {
    version: packet[8],
    channels: packet[9],
    preSkip: view.getUint16(10, true),
    inputSampleRate: view.getUint32(12, true),
    outputGain: view.getInt16(16, true),
    mappingFamily: packet[18],
  };
}

export function opusTags(vendor = "moshi-web", comments = []) {
  const enc = new TextEncoder();
  const parts = [OPUS_TAGS, u32(enc.encode(vendor).length), enc.encode(vendor), u32(comments.length)];
  for (const c of comments) parts.push(u32(enc.encode(c).length), enc.encode(c));
  return concat(parts);
}

function u32(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

/** Duration of one Opus packet in 48 kHz samples, from its TOC byte (RFC 6716 §3.1). */
export function opusPacketSamples(packet) {
  if (packet.length < 1) throw new OggError("empty Opus packet");
  const config = packet[0] >> 3;
  let frame;
  if (config < 12) frame = [480, 960, 1920, 2880][config & 3]; // SILK 10/20/40/60 ms
  else if (config < 16) frame = [480, 960][config & 1]; // hybrid 10/20 ms
  else frame = [120, 240, 480, 960][config & 3]; // CELT 2.5/5/10/20 ms
  const code = packet[0] & 3;
  let frames = code === 0 ? 1 : code < 3 ? 2 : 0;
  if (code === 3) {
    if (packet.length < 2) throw new OggError("Opus code-3 packet without a frame count");
    frames = packet[1] & 0x3f;
  }
  const samples = frame * frames;
  if (samples === 0 || samples > 5760) throw new OggError(`invalid Opus packet duration ${samples}`);
  return samples;
}

export function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---- Muxer: Opus packets in, Ogg page bytes out.

export class OggOpusMuxer {
  /**
   * packetsPerPage: audio packets gathered in one page (1 = lowest latency).
   * maxSegmentsPerPage: at most 255; lower values force long packets across pages (tests).
   */
  constructor({
    serial = (Math.random() * 0x100000000) >>> 0,
    channels = 1,
    inputSampleRate = 24000,
    preSkip = 0,
    vendor = "moshi-web",
    packetsPerPage = 1,
    maxSegmentsPerPage = MAX_SEGMENTS,
  } = {}) {
    if (!(maxSegmentsPerPage >= 1 && maxSegmentsPerPage <= MAX_SEGMENTS)) {
      throw new OggError(`maxSegmentsPerPage must be in 1..255, got ${maxSegmentsPerPage}`);
    }
    Object.assign(this, { serial, packetsPerPage, maxSegmentsPerPage });
    this.head = opusHead({ channels, preSkip, inputSampleRate });
    this.tags = opusTags(vendor);
    this.preSkip = preSkip;
    this.sequence = 0;
    this.samples = 0; // 48 kHz samples of audio muxed so far
    this.pending = []; // [{data, granule}] waiting for a page
    this.headerWritten = false;
    this.ended = false;
  }

  /** The OpusHead page (BOS) and OpusTags page. Emitted by the first write() if not asked. */
  header() {
    if (this.headerWritten) return new Uint8Array(0);
    this.headerWritten = true;
    const head = this.#pages([{ data: this.head, granule: 0n }], HeaderType.BOS);
    const tags = this.#pages([{ data: this.tags, granule: 0n }], 0);
    return concat([head, tags]);
  }

  /** Add one Opus packet; returns the bytes of the pages it completes (maybe none). */
  write(packet) {
    if (this.ended) throw new OggError("write() after end()");
    this.samples += opusPacketSamples(packet);
    // RFC 7845: the granule position counts the pre-skip too.
    this.pending.push({ data: packet, granule: BigInt(this.samples + this.preSkip) });
    const header = this.header();
    if (this.pending.length < this.packetsPerPage) return header;
    return concat([header, this.flush()]);
  }

  /** Pages holding every packet written so far. */
  flush() {
    const packets = this.pending;
    this.pending = [];
    return packets.length ? this.#pages(packets, 0) : new Uint8Array(0);
  }

  /** Flush and close the stream with an EOS page. */
  end() {
    const header = this.header();
    const packets = this.pending;
    this.pending = [];
    this.ended = true;
    const granule = BigInt(this.samples + this.preSkip);
    if (!packets.length) {
      const eos = writePage({
        headerType: HeaderType.EOS, granule, serial: this.serial, sequence: this.sequence++,
        lacing: [], body: new Uint8Array(0),
      });
      return concat([header, eos]);
    }
    return concat([header, this.#pages(packets, 0, HeaderType.EOS)]);
  }

  // Lay packets out in as few pages as the segment limit allows.
  #pages(packets, firstFlags, lastFlags = 0) {
    const pages = [];
    let lacing = [];
    let chunks = [];
    let granule = -1n; // stays -1 on a page where no packet ends
    let flags = firstFlags;
    const emit = () => {
      pages.push({ flags, granule, lacing, body: concat(chunks) });
      lacing = [];
      chunks = [];
      granule = -1n;
      flags = 0;
    };
    for (const { data, granule: end } of packets) {
      let segs = Math.floor(data.length / 255) + 1; // lacing values this packet still needs
      let at = 0;
      for (;;) {
        const room = this.maxSegmentsPerPage - lacing.length;
        if (segs <= room) {
          for (let i = 0; i < segs - 1; i++) lacing.push(255);
          lacing.push((data.length - at) % 255);
          chunks.push(data.subarray(at));
          granule = end;
          break;
        }
        for (let i = 0; i < room; i++) lacing.push(255);
        chunks.push(data.subarray(at, at + 255 * room));
        at += 255 * room;
        segs -= room;
        emit();
        if (at > 0) flags = HeaderType.CONTINUED; // this packet goes on in the new page
      }
    }
    if (lacing.length) emit();
    pages[pages.length - 1].flags |= lastFlags;
    return concat(
      pages.map((p) =>
        writePage({
          headerType: p.flags, granule: p.granule, serial: this.serial, sequence: this.sequence++,
          lacing: p.lacing, body: p.body,
        }),
      ),
    );
  }
}

// ---- Demuxer: Ogg bytes in (any chunking), packets out.

export class OggDemuxer {
  constructor({ checkCrc = true } = {}) {
    this.checkCrc = checkCrc;
    this.buffer = new Uint8Array(0);
    this.partial = []; // chunks of a packet that goes on in the next page
    this.lost = false; // inside a packet whose start we never saw
    this.serial = null;
  }

  /**
   * Feed bytes. Returns {pages, packets}: the pages completed by these bytes, and the
   * packets they complete, each {data, granule (of its page if it ends there, else null),
   * serial, sequence}. Throws OggError on bytes that are not Ogg or a bad CRC.
   */
  push(bytes) {
    this.buffer = this.buffer.length ? concat([this.buffer, bytes]) : Uint8Array.from(bytes);
    const pages = [];
    const packets = [];
    let offset = 0;
    for (;;) {
      const page = readPage(this.buffer, offset);
      if (!page) break;
      if (this.checkCrc && !page.crcOk) throw new OggError(`bad CRC in page ${page.sequence}`);
      offset += page.size;
      pages.push(page);
      packets.push(...this.#packets(page));
    }
    this.buffer = this.buffer.slice(offset);
    return { pages, packets };
  }

  #packets(page) {
    if (this.serial === null || page.headerType & HeaderType.BOS) this.serial = page.serial;
    if (page.serial !== this.serial) return []; // another logical stream: not ours
    const continued = (page.headerType & HeaderType.CONTINUED) !== 0;
    if (!continued) {
      this.partial = []; // a continuation we expected never came: drop that packet
      this.lost = false;
    } else if (this.partial.length === 0) {
      this.lost = true; // the tail of a packet whose start we never saw: drop it
    }
    let lastEnd = -1;
    page.lacing.forEach((v, i) => {
      if (v < 255) lastEnd = i;
    });
    const out = [];
    let at = 0;
    page.lacing.forEach((v, i) => {
      if (!this.lost) this.partial.push(page.body.slice(at, at + v));
      at += v;
      if (v === 255) return;
      if (!this.lost) {
        const data = this.partial.length === 1 ? this.partial[0] : concat(this.partial);
        out.push({ data, granule: i === lastEnd ? page.granule : null, serial: page.serial, sequence: page.sequence });
      }
      this.partial = [];
      this.lost = false;
    });
    return out;
  }
}

/**
 * Ogg/Opus stream reader: push bytes, get {head, audio}: head (parsed OpusHead) once it
 * arrives, and the audio packets with their duration and start time in 48 kHz samples.
 */
export class OggOpusDemuxer {
  constructor(options) {
    this.ogg = new OggDemuxer(options);
    this.head = null;
    this.headerPackets = 0;
    this.samples = 0; // 48 kHz samples of audio packets seen so far
  }

  push(bytes) {
    const audio = [];
    let head = null;
    for (const packet of this.ogg.push(bytes).packets) {
      if (this.headerPackets === 0) {
        head = this.head = parseOpusHead(packet.data);
        this.headerPackets++;
      } else if (this.headerPackets === 1) {
        if (!isOpusTags(packet.data)) throw new OggError("second packet is not OpusTags");
        this.headerPackets++;
      } else {
        const samples = opusPacketSamples(packet.data);
        audio.push({ data: packet.data, samples, start: this.samples });
        this.samples += samples;
      }
    }
    return { head, audio };
  }
}
