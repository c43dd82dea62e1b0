// AudioWorklet: plays Moshi's voice through the jitter buffer in jitter.js.
// Main thread -> worklet: {type: "audio", samples: Float32Array at the context's rate}.
// Worklet -> main thread, about 10 times a second: {type: "stats", ...JitterBuffer.stats(),
// level: RMS of what was just played}.
import { JitterBuffer } from "./jitter.js";

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.buffer = new JitterBuffer({ sampleRate, ...(options.processorOptions ?? {}) });
    this.reportEvery = Math.round(sampleRate / 10);
    this.sinceReport = 0;
    this.energy = 0;
    this.running = true;
    this.port.onmessage = (event) => {
      const msg = event.data;
      if (msg?.type === "audio") this.buffer.push(msg.samples);
      else if (msg?.type === "stop") this.running = false;
    };
  }

  process(_inputs, outputs) {
    const channels = outputs[0];
    const first = channels[0];
    this.buffer.pull(first);
    for (let c = 1; c < channels.length; c++) channels[c].set(first);
    for (const s of first) this.energy += s * s;
    this.sinceReport += first.length;
    if (this.sinceReport >= this.reportEvery) {
      const level = Math.sqrt(this.energy / this.sinceReport);
      this.port.postMessage({ type: "stats", level, ...this.buffer.stats() });
      this.sinceReport = 0;
      this.energy = 0;
    }
    return this.running;
  }
}

registerProcessor("moshi-playback", PlaybackProcessor);
