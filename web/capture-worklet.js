// AudioWorklet: microphone capture. Mixes the input to mono, resamples it from the
// AudioContext's rate to 24 kHz and posts fixed-size chunks (default 20 ms = 480 samples,
// one Opus frame) to the main thread: {samples: Float32Array, level: RMS of the chunk}.
import { Resampler } from "./resample.js";

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate = 24000, chunkSamples = 480 } = options.processorOptions ?? {};
    this.resampler = new Resampler(sampleRate, targetRate); // `sampleRate`: the worklet global
    this.chunkSamples = chunkSamples;
    this.chunk = new Float32Array(chunkSamples);
    this.filled = 0;
    this.running = true;
    this.port.onmessage = (event) => {
      if (event.data?.type === "stop") this.running = false;
    };
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return this.running; // nothing connected yet
    let mono = channels[0];
    if (channels.length > 1) {
      mono = new Float32Array(mono.length);
      for (const ch of channels) for (let i = 0; i < ch.length; i++) mono[i] += ch[i] / channels.length;
    }
    const resampled = this.resampler.process(mono);
    let at = 0;
    while (at < resampled.length) {
      const n = Math.min(resampled.length - at, this.chunkSamples - this.filled);
      this.chunk.set(resampled.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled === this.chunkSamples) {
        let energy = 0;
        for (const s of this.chunk) energy += s * s;
        const samples = this.chunk;
        this.port.postMessage({ samples, level: Math.sqrt(energy / samples.length) }, [samples.buffer]);
        this.chunk = new Float32Array(this.chunkSamples);
        this.filled = 0;
      }
    }
    return this.running;
  }
}

registerProcessor("moshi-capture", CaptureProcessor);
