import assert from "node:assert/strict";
import { test } from "node:test";

import { JitterBuffer } from "../jitter.js";

const RATE = 48000;
const QUANTUM = 128;
const ms = (n) => Math.round((n * RATE) / 1000);
const tone = (n, value = 0.5) => new Float32Array(n).fill(value);

function pullMany(jb, quanta) {
  const out = [];
  for (let i = 0; i < quanta; i++) {
    const q = new Float32Array(QUANTUM);
    jb.pull(q);
    out.push(q);
  }
  const all = new Float32Array(quanta * QUANTUM);
  out.forEach((q, i) => all.set(q, i * QUANTUM));
  return all;
}

test("stays silent until ~80 ms is buffered, then plays", () => {
  const jb = new JitterBuffer({ sampleRate: RATE });
  jb.push(tone(ms(60)));
  assert.ok(pullMany(jb, 4).every((s) => s === 0), "silent below the start threshold");
  assert.equal(jb.stats().playing, false);
  assert.equal(Math.round(jb.bufferedMs), 60, "nothing consumed while buffering");
  jb.push(tone(ms(20)));
  const out = pullMany(jb, 4);
  assert.equal(jb.stats().playing, true);
  assert.ok(out[0] < 0.5 && out[0] > 0, "fades in");
  assert.equal(out[out.length - 1], 0.5, "full level after the fade-in");
});

test("underrun: fades out, counts, raises the target, and rebuffers before resuming", () => {
  const jb = new JitterBuffer({ sampleRate: RATE, startMs: 80, growMs: 20, fadeMs: 5 });
  jb.push(tone(ms(80) + 64)); // 80 ms + half a quantum
  const played = pullMany(jb, Math.floor(ms(80) / QUANTUM) + 1); // the last quantum underruns
  const last = played.subarray(played.length - QUANTUM);
  const tail = (ms(80) + 64) % QUANTUM; // samples of audio in the last quantum
  assert.ok(last[tail - 1] < 0.05, "faded to ~zero at the end of the audio");
  assert.ok(last.subarray(tail).every((s) => s === 0), "silence after the audio");
  assert.equal(jb.stats().underruns, 1);
  assert.equal(jb.stats().playing, false);
  assert.equal(jb.targetMs, 100);
  jb.push(tone(ms(90)));
  assert.ok(pullMany(jb, 2).every((s) => s === 0), "waits for the new 100 ms target");
  jb.push(tone(ms(10)));
  const resumed = pullMany(jb, 2);
  assert.ok(resumed[0] > 0 && resumed[0] < 0.5, "fades back in");
});

test("the target grows at most to maxTargetMs and comes back down after calm playback", () => {
  const jb = new JitterBuffer({ sampleRate: RATE, startMs: 80, growMs: 20, maxTargetMs: 120, calmS: 1 });
  for (let i = 0; i < 5; i++) {
    jb.push(tone(ms(jb.targetMs)));
    pullMany(jb, Math.ceil(ms(jb.targetMs) / QUANTUM) + 1);
  }
  assert.equal(jb.targetMs, 120);
  assert.equal(jb.stats().underruns, 5);
  jb.push(tone(ms(120))); // start, then keep it fed for 2 s
  for (let i = 0; i < 40; i++) {
    jb.push(tone(ms(50)));
    pullMany(jb, Math.round(ms(50) / QUANTUM));
  }
  assert.ok(jb.targetMs < 120, `target came down (${jb.targetMs} ms)`);
  assert.ok(jb.targetMs >= 80);
});

test("latency is bounded: beyond target + headroom the oldest audio is dropped", () => {
  const jb = new JitterBuffer({ sampleRate: RATE, startMs: 80, headroomMs: 160 });
  jb.push(tone(ms(80)));
  pullMany(jb, 4); // playing, past the fade-in
  let dropped = 0;
  for (let i = 0; i < 50; i++) dropped += jb.push(tone(ms(80))); // 4 s arrive at once
  assert.ok(jb.bufferedMs <= 80 + 160 + 1e-9, `buffer ${jb.bufferedMs} ms`);
  assert.ok(dropped > 0);
  assert.equal(Math.round(jb.stats().droppedMs), Math.round((1000 * dropped) / RATE));
  // the audio played right after a drop is continuous (crossfaded, no gap to zero)
  const after = pullMany(jb, 4);
  assert.ok(after.every((s) => Math.abs(s - 0.5) < 1e-6));
});

test("a drop crossfades old into new audio", () => {
  const jb = new JitterBuffer({ sampleRate: RATE, startMs: 10, headroomMs: 20, fadeMs: 1 });
  jb.push(tone(ms(10), 1));
  pullMany(jb, 1);
  jb.push(tone(ms(40), -1)); // exceeds 30 ms: drops back to 10 ms
  const out = pullMany(jb, 1);
  assert.ok(out[0] > -1 && out[0] < 1, "first samples blend the two");
  assert.equal(out[QUANTUM - 1], -1);
});

test("stats report buffer and played seconds", () => {
  const jb = new JitterBuffer({ sampleRate: RATE });
  jb.push(tone(RATE)); // 1 s (exceeds 80 + 160 ms: trimmed to the target before playing)
  assert.equal(Math.round(jb.bufferedMs), 80);
  const s0 = jb.stats();
  assert.equal(s0.playedS, 0);
  pullMany(jb, 100);
  const s = jb.stats();
  assert.ok(Math.abs(s.playedS - (Math.min(100 * QUANTUM, ms(80)) / RATE)) < 1e-9);
});
