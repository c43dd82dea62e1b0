// Opus through WebCodecs, framed as Ogg by ogg.js.
//   OpusSender:   24 kHz PCM -> AudioEncoder -> Opus packets -> Ogg pages (headers first)
//   OpusReceiver: Ogg pages -> Opus packets -> AudioDecoder -> PCM

import { OPUS_RATE, OggOpusDemuxer, OggOpusMuxer, isOpusHead, opusPacketSamples, parseOpusHead } from "./ogg.js";

export const SAMPLE_RATE = 24000; // what the server's codec works at (moshi/audio.py)
export const FRAME_SAMPLES = 480; // 20 ms Opus frames

const ENCODER_CONFIG = {
  codec: "opus",
  sampleRate: SAMPLE_RATE,
  numberOfChannels: 1,
  bitrate: 32000,
  opus: { frameDuration: (1e6 * FRAME_SAMPLES) / SAMPLE_RATE },
};
const DECODER_CONFIG = { codec: "opus", sampleRate: OPUS_RATE, numberOfChannels: 1 };

/** Resolves to null when WebCodecs can encode and decode Opus here, else to the reason. */
export async function webCodecsProblem() {
  if (typeof AudioEncoder === "undefined" || typeof AudioDecoder === "undefined") {
    return "This browser has no WebCodecs audio (AudioEncoder and AudioDecoder).";
  }
  try {
    const [enc, dec] = await Promise.all([
      AudioEncoder.isConfigSupported(ENCODER_CONFIG),
      AudioDecoder.isConfigSupported(DECODER_CONFIG),
    ]);
    if (!enc.supported) return "This browser's WebCodecs cannot encode Opus at 24 kHz.";
    if (!dec.supported) return "This browser's WebCodecs cannot decode Opus.";
  } catch (e) {
    return `WebCodecs refused the Opus configuration (${e.message}).`;
  }
  return null;
}

const bytesOf = (buf) => (ArrayBuffer.isView(buf) ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : new Uint8Array(buf));

export class OpusSender {
  /** onPages(Uint8Array): Ogg bytes ready to send; the first call carries the headers. */
  constructor({ onPages, onError }) {
    this.onPages = onPages;
    this.muxer = null;
    this.frames = 0; // 24 kHz samples given to the encoder
    this.samples = 0; // 48 kHz samples of Opus packets produced
    this.encoder = new AudioEncoder({ output: (chunk, meta) => this.#output(chunk, meta), error: onError });
    this.encoder.configure(ENCODER_CONFIG);
  }

  get seconds() {
    return this.samples / OPUS_RATE;
  }

  /** Encode 24 kHz mono samples (any length; the encoder frames them). */
  encode(samples) {
    if (this.encoder.state !== "configured") return;
    const data = new AudioData({
      format: "f32-planar",
      sampleRate: SAMPLE_RATE,
      numberOfFrames: samples.length,
      numberOfChannels: 1,
      timestamp: Math.round((this.frames * 1e6) / SAMPLE_RATE),
      data: samples,
    });
    this.frames += samples.length;
    this.encoder.encode(data);
    data.close();
  }

  close() {
    if (this.encoder.state !== "closed") this.encoder.close();
  }

  #output(chunk, meta) {
    if (!this.muxer) {
      // The encoder may describe itself with an OpusHead: take its pre-skip (lookahead).
      const description = meta?.decoderConfig?.description;
      const head = description && bytesOf(description);
      const preSkip = head && isOpusHead(head) ? parseOpusHead(head).preSkip : 0;
      this.muxer = new OggOpusMuxer({ inputSampleRate: SAMPLE_RATE, preSkip });
    }
    const packet = new Uint8Array(chunk.byteLength);
    chunk.copyTo(packet);
    this.samples += opusPacketSamples(packet);
    const pages = this.muxer.write(packet);
    if (pages.length) this.onPages(pages);
  }
}

export class OpusReceiver {
  /** onAudio(Float32Array mono, sampleRate) for each decoded block. */
  constructor({ onAudio, onError }) {
    Object.assign(this, { onAudio, onError });
    this.demuxer = new OggOpusDemuxer();
    this.decoder = null;
  }

  get seconds() {
    return this.demuxer.samples / OPUS_RATE;
  }

  /** Feed the payload of one AUDIO message. */
  push(bytes) {
    const { head, audio } = this.demuxer.push(bytes);
    if (head) this.#configure(head);
    for (const { data, samples, start } of audio) {
      if (!this.decoder || this.decoder.state !== "configured") continue;
      this.decoder.decode(
        new EncodedAudioChunk({
          type: "key",
          timestamp: Math.round((start * 1e6) / OPUS_RATE),
          duration: Math.round((samples * 1e6) / OPUS_RATE),
          data,
        }),
      );
    }
  }

  close() {
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
  }

  #configure(head) {
    this.close();
    // No `description`: for mono/stereo it is optional, and leaving it out keeps the
    // decoder from trimming the pre-skip (sphn's streams do not expect it trimmed).
    this.decoder = new AudioDecoder({ output: (d) => this.#output(d), error: this.onError });
    this.decoder.configure({ ...DECODER_CONFIG, numberOfChannels: head.channels });
  }

  #output(audioData) {
    try {
      this.onAudio(toMono(audioData), audioData.sampleRate);
    } finally {
      audioData.close();
    }
  }
}

/** Copy AudioData out as one Float32Array channel (averaging channels). */
function toMono(audioData) {
  const n = audioData.numberOfFrames;
  const channels = audioData.numberOfChannels;
  const mono = new Float32Array(n);
  const plane = new Float32Array(n);
  try {
    for (let c = 0; c < channels; c++) {
      audioData.copyTo(plane, { planeIndex: c, format: "f32-planar" });
      for (let i = 0; i < n; i++) mono[i] += plane[i] / channels;
    }
    return mono;
  } catch {
    // Browsers that cannot convert formats: read the native one.
  }
  const format = audioData.format;
  const interleaved = !format.endsWith("-planar");
  const Kind = format.startsWith("f32") ? Float32Array : format.startsWith("s16") ? Int16Array : null;
  if (!Kind) throw new Error(`unsupported decoded audio format ${format}`);
  const scale = Kind === Int16Array ? 1 / 32768 : 1;
  if (interleaved) {
    const all = new Kind(n * channels);
    audioData.copyTo(all, { planeIndex: 0 });
    for (let i = 0; i < n * channels; i++) mono[Math.floor(i / channels)] += (all[i] * scale) / channels;
  } else {
    const one = new Kind(n);
    for (let c = 0; c < channels; c++) {
      audioData.copyTo(one, { planeIndex: c });
      for (let i = 0; i < n; i++) mono[i] += (one[i] * scale) / channels;
    }
  }
  return mono;
}
