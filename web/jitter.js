// The playback jitter buffer's logic, free of any audio API so node can test it.
// playback-worklet.js feeds it decoded audio and pulls 128-sample render quanta from it.
//
// - It starts playing once `targetMs` of audio is buffered (initially `startMs`, ~80 ms).
// - On underrun it fades the last samples out, plays silence, raises the target by
//   `growMs` (up to `maxTargetMs`) and waits to rebuffer; it fades back in on resume.
// - After `calmS` seconds of playback without underrun, the target comes back down by
//   `growMs` (never below `startMs`): it adapts to the jitter the network shows now.
// - If more than `targetMs + headroomMs` is buffered, the oldest audio is dropped back to
//   the target (with a short crossfade), so latency cannot grow without bound.

export class JitterBuffer {
  constructor({
    sampleRate,
    startMs = 80,
    growMs = 20,
    maxTargetMs = 300,
    headroomMs = 160,
    fadeMs = 5,
    calmS = 10,
    capacityS = 2,
  }) {
    if (!(sampleRate > 0)) throw new RangeError(`sampleRate must be positive, got ${sampleRate}`);
    Object.assign(this, { sampleRate, startMs, growMs, maxTargetMs, headroomMs, fadeMs, calmS });
    this.ring = new Float32Array(Math.ceil(sampleRate * capacityS));
    this.read = 0; // index of the oldest sample
    this.count = 0; // samples buffered
    this.targetMs = startMs;
    this.playing = false;
    this.fadeIn = 0; // samples of fade-in still to apply
    this.calmSamples = 0; // samples played since the last underrun or target change
    this.underruns = 0;
    this.droppedSamples = 0;
    this.playedSamples = 0; // samples of real audio played
  }

  ms(samples) {
    return (1000 * samples) / this.sampleRate;
  }

  samples(ms) {
    return Math.round((ms * this.sampleRate) / 1000);
  }

  get bufferedMs() {
    return this.ms(this.count);
  }

  get maxMs() {
    return this.targetMs + this.headroomMs;
  }

  /** Add decoded audio (Float32Array at `sampleRate`). Returns the samples dropped. */
  push(samples) {
    let dropped = 0;
    if (samples.length > this.ring.length) {
      dropped += samples.length - this.ring.length;
      samples = samples.subarray(samples.length - this.ring.length);
    }
    const overflow = this.count + samples.length - this.ring.length;
    if (overflow > 0) dropped += this.#discard(overflow, false);
    let write = (this.read + this.count) % this.ring.length;
    const first = Math.min(samples.length, this.ring.length - write);
    this.ring.set(samples.subarray(0, first), write);
    this.ring.set(samples.subarray(first), 0);
    this.count += samples.length;
    if (this.count > this.samples(this.maxMs)) {
      dropped += this.#discard(this.count - this.samples(this.targetMs), this.playing);
    }
    this.droppedSamples += dropped;
    return dropped;
  }

  /** Fill `out` (a render quantum) with audio, or silence while buffering. */
  pull(out) {
    if (!this.playing) {
      if (this.count < this.samples(this.targetMs) || this.count === 0) {
        out.fill(0);
        return;
      }
      this.playing = true;
      this.fadeIn = this.samples(this.fadeMs);
    }
    const n = Math.min(out.length, this.count);
    this.#copyOut(out, n);
    for (let i = 0; i < n && this.fadeIn > 0; i++, this.fadeIn--) {
      out[i] *= 1 - this.fadeIn / (this.samples(this.fadeMs) + 1);
    }
    this.playedSamples += n;
    if (n < out.length) {
      // Underrun: fade what we have to zero, then silence until we have rebuffered.
      const fade = Math.min(n, this.samples(this.fadeMs));
      for (let i = 0; i < fade; i++) out[n - fade + i] *= (fade - i - 1) / fade;
      out.fill(0, n);
      this.playing = false;
      this.underruns++;
      this.targetMs = Math.min(this.maxTargetMs, this.targetMs + this.growMs);
      this.calmSamples = 0;
      return;
    }
    this.calmSamples += n;
    if (this.calmSamples >= this.calmS * this.sampleRate && this.targetMs > this.startMs) {
      this.targetMs = Math.max(this.startMs, this.targetMs - this.growMs);
      this.calmSamples = 0;
    }
  }

  stats() {
    return {
      bufferedMs: this.bufferedMs,
      targetMs: this.targetMs,
      playing: this.playing,
      underruns: this.underruns,
      droppedMs: this.ms(this.droppedSamples),
      playedS: this.playedSamples / this.sampleRate,
    };
  }

  #copyOut(out, n) {
    const first = Math.min(n, this.ring.length - this.read);
    out.set(this.ring.subarray(this.read, this.read + first), 0);
    out.set(this.ring.subarray(0, n - first), first);
    this.read = (this.read + n) % this.ring.length;
    this.count -= n;
  }

  // Drop the `n` oldest samples; with `crossfade`, blend what would have played next into
  // what now plays next, so the cut does not click.
  #discard(n, crossfade) {
    n = Math.min(n, this.count);
    const len = crossfade ? Math.min(this.samples(this.fadeMs), this.count - n) : 0;
    const at = (i) => (this.read + i) % this.ring.length;
    for (let i = 0; i < len; i++) {
      const w = (i + 1) / (len + 1);
      this.ring[at(n + i)] = this.ring[at(i)] * (1 - w) + this.ring[at(n + i)] * w;
    }
    this.read = at(n);
    this.count -= n;
    return n;
  }
}
