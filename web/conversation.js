// One conversation: microphone -> capture worklet -> Opus/Ogg -> websocket -> server, and
// server -> Ogg/Opus -> decoder -> playback worklet (jitter buffer) -> speakers, plus the
// text pieces, the server's errors, and a recording of both voices. No DOM here: app.js
// listens through the `hooks` callbacks.

import { OpusReceiver, OpusSender, SAMPLE_RATE, FRAME_SAMPLES } from "./opus.js";
import { MessageKind, ProtocolError, decode, encode } from "./protocol.js";
import { Resampler } from "./resample.js";

const HANDSHAKE_WAIT_S = 30; // the server answers at once, or says it is busy
const SILENCE_LIMIT_S = 10; // no message at all for this long: the server is gone
const MAX_SEND_BACKLOG = 64 * 1024; // bytes queued in the socket before we skip mic audio

const RECORDING_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4", "audio/webm"];

/** A problem for a person: a short title and a sentence or two of what to do. */
export class Problem extends Error {
  constructor(title, body) {
    super(`${title}: ${body}`);
    Object.assign(this, { title, body });
  }
}

export function micProblem(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return new Problem(
        "Microphone access was denied",
        "Allow the microphone for this site (the icon in the address bar), then start again.",
      );
    case "NotFoundError":
    case "OverconstrainedError":
      return new Problem("No microphone found", "Plug in or enable a microphone, then start again.");
    case "NotReadableError":
    case "AbortError":
      return new Problem(
        "The microphone is busy",
        "Another application or tab may be using it. Close it, then start again.",
      );
    default:
      return new Problem("The microphone could not be opened", String(error?.message ?? error));
  }
}

export class Conversation {
  /**
   * hooks: {state(name, detail), text(piece), problem(Problem), metadata(obj),
   *         level(who: "you"|"moshi", rms), recording(blob, extension)}
   * States: starting -> connecting -> waiting -> live -> ended.
   */
  constructor(url, hooks) {
    this.url = url;
    this.hooks = hooks;
    this.state = "idle";
    this.playback = { bufferedMs: 0, targetMs: 0, underruns: 0, droppedMs: 0 };
    this.serverError = null;
    this.skippedS = 0;
    this.timers = [];
  }

  get stats() {
    return {
      sentS: this.sender?.seconds ?? 0,
      receivedS: this.receiver?.seconds ?? 0,
      ...this.playback,
      outputLatencyMs: 1000 * (this.ctx?.outputLatency || this.ctx?.baseLatency || 0),
    };
  }

  async start() {
    this.#setState("starting");
    // Created first, inside the click that started us, so autoplay rules let it run.
    this.ctx = new AudioContext({ latencyHint: "interactive" });
    const modules = Promise.all(
      ["capture-worklet.js", "playback-worklet.js"].map((f) => this.ctx.audioWorklet.addModule(new URL(f, import.meta.url))),
    );
    modules.catch(() => {}); // awaited (and reported) below, unless the microphone fails first
    try {
      this.mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
      });
    } catch (e) {
      this.#finish(micProblem(e));
      return;
    }
    await modules;
    if (this.state !== "ended") await this.ctx.resume();
    if (this.state === "ended") {
      this.mic.getTracks().forEach((t) => t.stop()); // stopped while we were getting ready
      return;
    }
    this.#buildGraph();
    this.#connect();
  }

  /** End the conversation (user's choice): no problem is reported. */
  stop() {
    this.#finish(null, "You ended the conversation.");
  }

  /** End the conversation because of `problem` (a Problem), unless it already ended. */
  fail(problem) {
    this.#finish(problem);
  }

  #buildGraph() {
    const ctx = this.ctx;
    this.source = ctx.createMediaStreamSource(this.mic);
    this.capture = new AudioWorkletNode(ctx, "moshi-capture", {
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { targetRate: SAMPLE_RATE, chunkSamples: FRAME_SAMPLES },
    });
    this.capture.port.onmessage = ({ data }) => this.#onMic(data);
    this.source.connect(this.capture);
    this.capture.connect(ctx.destination); // silent; keeps the node rendered everywhere

    this.player = new AudioWorkletNode(ctx, "moshi-playback", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    this.player.port.onmessage = ({ data }) => {
      this.playback = data;
      this.hooks.level?.("moshi", data.level);
    };
    this.player.connect(ctx.destination);

    // Both voices, as heard here, into one recording.
    this.recordDest = ctx.createMediaStreamDestination();
    this.source.connect(this.recordDest);
    this.player.connect(this.recordDest);
  }

  #connect() {
    this.#setState("connecting");
    this.ws = new WebSocket(this.url);
    this.ws.binaryType = "arraybuffer";
    this.lastMessageAt = performance.now();
    this.ws.onopen = () => {
      this.opened = true;
      this.openedAt = performance.now();
      this.#setState("waiting");
    };
    this.ws.onmessage = (event) => this.#onMessage(event.data);
    this.ws.onclose = (event) => this.#onClose(event);
    this.timers.push(setInterval(() => this.#watchdog(), 1000));
  }

  #onMessage(data) {
    this.lastMessageAt = performance.now();
    let msg;
    try {
      msg = decode(data);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      console.warn("ignoring a malformed message:", e.message);
      return;
    }
    switch (msg.kind) {
      case MessageKind.HANDSHAKE:
        if (this.state === "waiting") this.#goLive();
        break;
      case MessageKind.AUDIO:
        try {
          this.receiver?.push(msg.payload);
        } catch (e) {
          this.#finish(new Problem("The server's audio could not be read", e.message));
        }
        break;
      case MessageKind.TEXT:
        this.hooks.text?.(msg.payload);
        break;
      case MessageKind.ERROR:
        this.serverError = msg.payload;
        this.hooks.problem?.(serverProblem(msg.payload, this.url));
        break;
      case MessageKind.METADATA:
        this.hooks.metadata?.(msg.payload);
        break;
      default: // PING, CONTROL, and kinds we do not know: nothing to do
    }
  }

  #goLive() {
    const fail = (what) => (e) => this.#finish(new Problem(`The browser's Opus ${what} failed`, e.message));
    this.sender = new OpusSender({
      onPages: (pages) => this.#send(encode(MessageKind.AUDIO, pages)),
      onError: fail("encoder"),
    });
    this.receiver = new OpusReceiver({ onAudio: (pcm, rate) => this.#play(pcm, rate), onError: fail("decoder") });
    this.#startRecording();
    this.#setState("live");
  }

  #onMic({ samples, level }) {
    this.hooks.level?.("you", level);
    if (this.state !== "live") return;
    if (this.ws.bufferedAmount > MAX_SEND_BACKLOG) {
      this.skippedS += samples.length / SAMPLE_RATE; // the network is behind: do not queue more
      return;
    }
    this.sender.encode(samples);
  }

  #send(bytes) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(bytes);
  }

  #play(pcm, rate) {
    if (!this.player) return;
    if (this.resampleFrom !== rate) {
      this.resampler = new Resampler(rate, this.ctx.sampleRate);
      this.resampleFrom = rate;
    }
    const samples = this.resampler.process(pcm);
    if (samples.length) this.player.port.postMessage({ type: "audio", samples }, [samples.buffer]);
  }

  #watchdog() {
    const now = performance.now();
    if (this.state === "waiting" && now - this.openedAt > HANDSHAKE_WAIT_S * 1000) {
      this.#finish(
        new Problem(
          "The server did not start the conversation",
          `No answer after ${HANDSHAKE_WAIT_S} s: it may be busy with other conversations. Try again later.`,
        ),
      );
    } else if (this.state === "live" && now - this.lastMessageAt > SILENCE_LIMIT_S * 1000) {
      this.#finish(new Problem("The server stopped responding", `Nothing received for ${SILENCE_LIMIT_S} s.`));
    }
  }

  #onClose(event) {
    if (this.state === "ended") return;
    const host = new URL(this.url).host;
    if (this.serverError) {
      // its message is already shown
      this.#finish(null, this.state === "live" ? "The server ended the conversation." : "Refused by the server");
    } else if (!this.opened) {
      const tokenHint = new URL(this.url).searchParams.has("auth_token")
        ? "and that the access token in Settings is right."
        : "and whether it needs an access token (Settings).";
      this.#finish(new Problem("Could not connect to the server", `No answer from ${host}. Check that it is running, ${tokenHint}`));
    } else if (event.code === 1000 || event.code === 1001) {
      this.#finish(null, "The server ended the conversation.");
    } else {
      const reason = event.reason ? `: ${event.reason}` : "";
      this.#finish(
        new Problem("The connection dropped", `The link to ${host} was lost (code ${event.code}${reason}). Start again to reconnect.`),
      );
    }
  }

  #startRecording() {
    if (typeof MediaRecorder === "undefined") return;
    const mimeType = RECORDING_TYPES.find((t) => MediaRecorder.isTypeSupported(t)) ?? "";
    try {
      this.recorder = new MediaRecorder(this.recordDest.stream, mimeType ? { mimeType } : {});
    } catch (e) {
      console.warn("no recording:", e);
      return;
    }
    const chunks = [];
    this.recorder.ondataavailable = (e) => e.data.size && chunks.push(e.data);
    this.recorder.onstop = () => {
      const type = this.recorder.mimeType || mimeType || "audio/webm";
      const extension = type.includes("mp4") ? "m4a" : type.includes("ogg") ? "ogg" : "webm";
      if (chunks.length) this.hooks.recording?.(new Blob(chunks, { type }), extension);
    };
    this.recorder.start(1000);
  }

  #setState(state, detail = "") {
    this.state = state;
    this.hooks.state?.(state, detail);
  }

  #finish(problem, detail = "") {
    if (this.state === "ended") return;
    this.#setState("ended", detail || problem?.title || "");
    if (problem) this.hooks.problem?.(problem);
    this.#release();
  }

  #release() {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.recorder?.state === "recording") this.recorder.stop();
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
    this.mic?.getTracks().forEach((t) => t.stop());
    this.capture?.port.postMessage({ type: "stop" });
    this.player?.port.postMessage({ type: "stop" });
    this.sender?.close();
    this.receiver?.close();
    // Let the recorder flush its last chunk before the graph goes away.
    setTimeout(() => this.ctx?.close().catch(() => {}), 300);
  }
}

/** The server's 0x05 message, shown as it is, with a hint when we recognise it. */
export function serverProblem(text, url) {
  const t = text.toLowerCase();
  let hint = "";
  if (t.includes("busy")) hint = "Every conversation slot is taken; try again in a minute.";
  else if (t.includes("auth") || t.includes("token")) hint = "Check the access token in Settings.";
  else if (/temperature|topk|top_k|seed|param/.test(t)) hint = "Check the values in Settings.";
  const host = url ? ` (${new URL(url).host})` : "";
  return new Problem(`The server${host} said: “${text}”`, hint);
}
