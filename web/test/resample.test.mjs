import assert from "node:assert/strict";
import { test } from "node:test";

import { Resampler } from "../resample.js";

function sine(freq, rate, n, phase = 0) {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(2 * Math.PI * freq * (i / rate) + phase));
}

function runChunked(r, input, chunk) {
  const parts = [];
  for (let at = 0; at < input.length; at += chunk) parts.push(r.process(input.subarray(at, at + chunk)));
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

for (const [from, to] of [[48000, 24000], [44100, 24000], [24000, 48000], [24000, 44100], [16000, 24000]]) {
  test(`${from} -> ${to}: a 440 Hz tone stays a 440 Hz tone, chunking does not matter`, () => {
    const input = sine(440, from, from); // 1 s
    const whole = new Resampler(from, to).process(input);
    const chunked = runChunked(new Resampler(from, to), input, 128);
    assert.equal(chunked.length, whole.length);
    for (let i = 0; i < whole.length; i++) assert.ok(Math.abs(whole[i] - chunked[i]) < 1e-5);
    assert.ok(Math.abs(whole.length - to) <= 32, `about 1 s out (${whole.length})`);
    // compare with the ideal tone, delayed by the filter's lookahead (none: centred kernel)
    const ideal = sine(440, to, whole.length);
    let err = 0;
    for (let i = 200; i < whole.length - 200; i++) err = Math.max(err, Math.abs(whole[i] - ideal[i]));
    assert.ok(err < 0.01, `max error ${err}`);
  });
}

test("48 -> 24 kHz removes content above the new Nyquist (no aliasing)", () => {
  const out = new Resampler(48000, 24000).process(sine(18000, 48000, 48000));
  let peak = 0;
  for (let i = 200; i < out.length - 200; i++) peak = Math.max(peak, Math.abs(out[i]));
  assert.ok(peak < 0.01, `18 kHz leaks at ${peak}`);
});

test("equal rates pass through", () => {
  const input = sine(100, 24000, 500);
  assert.deepEqual(new Resampler(24000, 24000).process(input), input);
});
