// Streaming band-limited resampler (windowed sinc, Blackman window), for mono Float32 audio.
// Used by the capture worklet (AudioContext rate -> 24 kHz) and for playback (decoder
// rate -> AudioContext rate). Rates are integers, so the output/input phase repeats every
// `up` outputs and the filter is tabulated per phase once.

const gcd = (a, b) => (b ? gcd(b, a % b) : a);

export class Resampler {
  /** zeroCrossings: sinc lobes on each side, at the lower of the two rates. */
  constructor(fromRate, toRate, { zeroCrossings = 8 } = {}) {
    if (!Number.isInteger(fromRate) || !Number.isInteger(toRate) || fromRate <= 0 || toRate <= 0) {
      throw new RangeError(`rates must be positive integers, got ${fromRate} -> ${toRate}`);
    }
    const g = gcd(fromRate, toRate);
    this.up = toRate / g; // output phases
    this.down = fromRate / g; // input samples per `up` outputs
    this.passthrough = fromRate === toRate;
    const scale = Math.min(1, toRate / fromRate);
    this.half = Math.ceil(zeroCrossings / scale); // taps on each side, in input samples
    const cutoff = 0.5 * scale * 0.92; // cycles per input sample, a little under Nyquist
    const taps = 2 * this.half;
    this.table = new Float32Array(this.up * taps);
    for (let phase = 0; phase < this.up; phase++) {
      const frac = phase / this.up;
      let sum = 0;
      for (let m = 0; m < taps; m++) {
        const d = this.half - 1 - m + frac; // distance from the output instant, in input samples
        const x = 2 * cutoff * d;
        const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
        const w = d / this.half; // in (-1, 1]
        const window = Math.abs(w) >= 1 ? 0 : 0.42 + 0.5 * Math.cos(Math.PI * w) + 0.08 * Math.cos(2 * Math.PI * w);
        const h = sinc * window;
        this.table[phase * taps + m] = h;
        sum += h;
      }
      for (let m = 0; m < taps; m++) this.table[phase * taps + m] /= sum; // unit gain at DC
    }
    // Input history: `hist[i]` is input sample `histStart + i`; starts with silence.
    this.hist = new Float32Array(taps);
    this.histStart = -taps;
    this.next = 0; // index of the next output sample
  }

  /** Feed input samples; returns the output samples they complete (a new Float32Array). */
  process(input) {
    if (this.passthrough) return Float32Array.from(input);
    const joined = new Float32Array(this.hist.length + input.length);
    joined.set(this.hist);
    joined.set(input, this.hist.length);
    const end = this.histStart + joined.length; // one past the last input index
    const taps = 2 * this.half;
    const out = [];
    for (;;) {
      const num = this.next * this.down; // output instant * up, in input samples
      const i0 = Math.floor(num / this.up);
      if (i0 + this.half >= end) break; // needs input we do not have yet
      const phase = num - i0 * this.up;
      const first = i0 - this.half + 1 - this.histStart;
      const row = phase * taps;
      let y = 0;
      for (let m = 0; m < taps; m++) y += joined[first + m] * this.table[row + m];
      out.push(y);
      this.next++;
    }
    const keepFrom = Math.floor((this.next * this.down) / this.up) - this.half + 1;
    const drop = Math.max(0, Math.min(joined.length, keepFrom - this.histStart));
    this.hist = joined.slice(drop);
    this.histStart += drop;
    return Float32Array.from(out);
  }
}
