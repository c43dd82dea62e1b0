// The page: settings, the start/stop button, status, transcript, stats, notices and the
// recording download. The conversation itself (audio, codecs, websocket) is conversation.js.

import { Conversation, Problem } from "./conversation.js";
import { webCodecsProblem } from "./opus.js";
import { AUTH_PARAM, QUERY_PARAMS, chatUrl } from "./protocol.js";

const $ = (selector) => document.querySelector(selector);
const ui = {
  button: $('[data-testid="connect"]'),
  label: $(".talk-label"),
  status: $('[data-testid="status"]'),
  statusText: $(".status-text"),
  transcript: $('[data-testid="transcript"]'),
  stats: $('[data-testid="stats"]'),
  notice: $(".notice"),
  noticeTitle: $(".notice-title"),
  noticeBody: $(".notice-body"),
  form: $(".settings-form"),
  settings: $(".settings"),
  download: $(".download"),
  meters: { you: $('[data-meter="you"]'), moshi: $('[data-meter="moshi"]') },
};

const STATES = {
  idle: ["Ready", "Start conversation"],
  starting: ["Asking for the microphone…", "Cancel"],
  connecting: ["Connecting…", "Cancel"],
  waiting: ["Waiting for the server…", "Cancel"],
  live: ["Live: talk to Moshi", "End conversation"],
  ended: ["Ended", "Start conversation"],
};
const SETTINGS_KEY = "moshi.settings"; // not the token: that stays out of storage
const FIELDS = [...QUERY_PARAMS, AUTH_PARAM];

let conversation = null;
let statsTimer = null;
let recordingUrl = null;
let blocked = false; // the browser cannot run a conversation at all

// ---- Notices

function showProblem(problem) {
  ui.noticeTitle.textContent = problem.title;
  ui.noticeBody.textContent = problem.body ?? "";
  ui.noticeBody.hidden = !problem.body;
  ui.notice.hidden = false;
}

function clearProblem() {
  ui.notice.hidden = true;
}

async function environmentProblem() {
  const page = `${location.protocol}//${location.host}`;
  if (!window.isSecureContext) {
    return new Problem(
      "This page needs a secure (https) connection",
      `Browsers only give the microphone to https pages and to localhost, and this is ${page}. ` +
        `Start the server with --ssl-self-signed (or --ssl DIR), then open https://${location.host}/ and accept ` +
        "the certificate; or forward the port over SSH and open http://localhost.",
    );
  }
  if (!navigator.mediaDevices?.getUserMedia || typeof AudioWorkletNode === "undefined") {
    return new Problem(
      "This browser cannot capture audio here",
      "It lacks getUserMedia or AudioWorklet. Use a current Chrome, Edge, Firefox or Safari.",
    );
  }
  const codecs = await webCodecsProblem();
  if (codecs) {
    return new Problem(
      "This browser cannot encode Opus audio",
      `${codecs} Use Chrome or Edge 94+, Firefox 130+ (desktop) or Safari 26+.`,
    );
  }
  return null;
}

// ---- Settings (query parameters), kept between visits

function readSettings() {
  const data = new FormData(ui.form);
  return Object.fromEntries(FIELDS.map((name) => [name, String(data.get(name) ?? "").trim()]));
}

function loadSettings() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? "{}");
  } catch {
    /* a broken entry is just ignored */
  }
  const fromPage = new URLSearchParams(location.search); // e.g. /?text_seed=42&auth_token=...
  for (const name of FIELDS) {
    const value = fromPage.get(name) ?? (name === AUTH_PARAM ? null : saved[name]);
    if (value != null) ui.form.elements[name].value = value;
  }
}

function saveSettings() {
  const { [AUTH_PARAM]: _token, ...rest } = readSettings();
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(rest));
  } catch {
    /* private mode: nothing kept */
  }
}

function invalidSetting() {
  for (const input of ui.form.querySelectorAll("input")) {
    if (!input.checkValidity()) {
      const label = `${input.closest("fieldset").querySelector("legend").textContent} ${input.labels[0].firstChild.textContent.trim()}`;
      return new Problem(`Check the setting “${label.toLowerCase()}”`, input.validationMessage);
    }
  }
  return null;
}

// ---- Status, transcript, stats, meters

function setState(state, detail = "") {
  const [text, label] = STATES[state];
  ui.status.dataset.state = state;
  ui.statusText.textContent = detail || text;
  ui.label.textContent = label;
  ui.button.classList.toggle("live", state === "live");
  ui.button.classList.toggle("busy", ["starting", "connecting", "waiting"].includes(state));
  ui.button.disabled = blocked;
  for (const el of ui.form.elements) el.disabled = state !== "idle" && state !== "ended";
  if (state === "ended") {
    clearInterval(statsTimer);
    renderStats();
    setMeter("you", 0);
    setMeter("moshi", 0);
  }
}

function appendText(piece) {
  const box = ui.transcript;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.append(box.textContent ? piece : piece.trimStart());
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function renderStats() {
  if (!conversation) return;
  const s = conversation.stats;
  ui.stats.textContent = `sent ${s.sentS.toFixed(1)} s · received ${s.receivedS.toFixed(1)} s · buffer ${Math.round(s.bufferedMs)} ms`;
  ui.stats.title =
    `Playback target ${Math.round(s.targetMs)} ms, output latency ${Math.round(s.outputLatencyMs)} ms, ` +
    `${s.underruns} underruns, ${Math.round(s.droppedMs)} ms dropped to keep latency bounded.`;
}

function setMeter(who, rms) {
  // RMS to a 0..1 bar on a -60..0 dB scale.
  const db = 20 * Math.log10(Math.max(rms ?? 0, 1e-6));
  const level = Math.min(1, Math.max(0, (db + 60) / 60));
  ui.meters[who].style.transform = `scaleX(${level.toFixed(3)})`;
}

function offerRecording(blob, extension) {
  if (recordingUrl) URL.revokeObjectURL(recordingUrl);
  recordingUrl = URL.createObjectURL(blob);
  const stamp = new Date().toISOString().slice(0, 16).replace(/[:T]/g, "-");
  ui.download.disabled = false;
  ui.download.onclick = () => {
    const a = document.createElement("a");
    a.href = recordingUrl;
    a.download = `moshi-conversation-${stamp}.${extension}`;
    a.click();
  };
}

// ---- Start / stop

async function start() {
  clearProblem();
  const problem = invalidSetting();
  if (problem) {
    ui.settings.open = true;
    showProblem(problem);
    return;
  }
  saveSettings();
  ui.transcript.textContent = "";
  const url = chatUrl(location, readSettings());
  conversation = new Conversation(url, {
    state: setState,
    text: appendText,
    problem: showProblem,
    level: setMeter,
    recording: offerRecording,
    metadata: (meta) => console.info("server metadata", meta),
  });
  clearInterval(statsTimer);
  statsTimer = setInterval(renderStats, 200);
  try {
    await conversation.start();
  } catch (e) {
    conversation.fail(new Problem("Could not start the audio", e.message));
  }
}

function onButton() {
  const state = conversation?.state ?? "idle";
  if (state === "idle" || state === "ended") start();
  else conversation.stop();
}

async function init() {
  loadSettings();
  ui.button.addEventListener("click", onButton);
  ui.form.addEventListener("submit", (e) => e.preventDefault());
  ui.form.querySelector(".reset").addEventListener("click", () => {
    for (const name of QUERY_PARAMS) ui.form.elements[name].value = "";
    saveSettings();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && conversation && !["idle", "ended"].includes(conversation.state)) conversation.stop();
  });
  setState("idle");
  const problem = await environmentProblem();
  if (problem) {
    blocked = true;
    setState("idle", "Cannot start here");
    showProblem(problem);
  }
}

init();
