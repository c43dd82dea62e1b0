"""The web client end to end in headless Chromium, driven by Playwright: the page served by
a real server (built from `moshi serve` flags: the tiny fixture models on CPU, behind an
access token), a fake microphone playing a speech wav, a whole conversation (audio both
ways, seen on the page and on the wire, the transcript, the recording), and a wrong token
refused on the page.

Needs Chromium: Debian's `chromium` (CI installs it), or the binary `$MOSHI_CHROMIUM` names.
`MOSHI_SKIP_BROWSER=1` skips these tests on a machine without one. Screenshots are written
to `test-artifacts/` at the repository root.

No sleeps: every wait is on a condition of the page, with a timeout that only guards
against a hang."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from moshi.cli.main import get_parser
from moshi.cli.serve import build_server
from tests.support.fixtures import FIXTURES, tiny_model_dir
from tests.support.server import ServerThread

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the tiny models: one thread

ROOT = Path(__file__).parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SKIP_ENV = "MOSHI_SKIP_BROWSER"
CHROMIUM_ENV = "MOSHI_CHROMIUM"
TOKEN = "open-sesame"
HANG_GUARD_MS = 30_000  # only so that a bug fails a test instead of hanging it
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",  # grant the microphone without asking
    "--use-fake-device-for-media-stream",
    f"--use-file-for-fake-audio-capture={FIXTURES / 'hello_24k.wav'}",  # the microphone, looped
]
STATS = re.compile(r"sent (\d+\.\d) s · received (\d+\.\d) s · buffer (\d+) ms")
AUDIO_SECONDS = 2.0  # of audio each way before the conversation is ended


def chromium_executable() -> str:
    named = os.environ.get(CHROMIUM_ENV)
    found = shutil.which(named) if named else shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail(
            "the browser tests need Chromium: apt-get install chromium (Debian), or set "
            f"{CHROMIUM_ENV} to a Chromium binary; {SKIP_ENV}=1 skips these tests"
        )
    return found


class CliServerThread(ServerThread):
    """The server `moshi serve ARGV` would run, in a thread with its own event loop."""

    def __init__(self, argv: list[str]):
        self.server = build_server(get_parser().parse_args(["serve", *argv]))
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)


@pytest.fixture(scope="module")
def browser():
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1")
    executable = chromium_executable()
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("the browser tests need Python playwright (pip install -e '.[test]')")
    expect.set_options(timeout=HANG_GUARD_MS)  # expect's own default is 5 s
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        expect.set_options(timeout=None)  # back to playwright's default


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory) -> Iterator[CliServerThread]:
    """The tiny models and the web client on 127.0.0.1 (a free port), behind a token."""
    config = tiny_model_dir(tmp_path_factory.mktemp("tiny"))
    argv = ["--config", str(config), "--device", "cpu", "--port", "0", "--auth-token", TOKEN]
    with CliServerThread(argv) as running:
        yield running


@pytest.fixture
def page(browser):
    """A fresh page in its own context (no storage shared between tests)."""
    context = browser.new_context(viewport={"width": 880, "height": 760}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(HANG_GUARD_MS)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    yield page
    context.close()
    assert not problems, f"uncaught errors in the page: {problems}"


class Traffic:
    """A page's websocket messages, as their kind bytes (0x00 handshake, 0x01 audio, ...)."""

    def __init__(self, page) -> None:
        self.urls: list[str] = []
        self.sent: list[int] = []
        self.received: list[int] = []
        self.audio_bytes_sent = 0
        page.on("websocket", self._watch)

    def _watch(self, ws) -> None:
        self.urls.append(ws.url)
        ws.on("framesent", self._sent)
        ws.on("framereceived", lambda payload: self.received.append(_kind(payload)))

    def _sent(self, payload: str | bytes) -> None:
        self.sent.append(_kind(payload))
        if self.sent[-1] == 0x01:
            self.audio_bytes_sent += len(payload) - 1


def _kind(payload: str | bytes) -> int:
    if isinstance(payload, str):
        return -1  # a text frame: never part of the protocol
    return payload[0] if payload else -2


def stats_seconds(page) -> tuple[float, float]:
    text = page.get_by_test_id("stats").text_content()
    m = STATS.fullmatch(text.strip())
    assert m, f"stats: {text!r}"
    return float(m[1]), float(m[2])


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / name, full_page=True)


def test_a_conversation_in_the_browser(server, page, tmp_path):
    from playwright.sync_api import expect

    traffic = Traffic(page)
    status, button = page.get_by_test_id("status"), page.get_by_test_id("connect")
    transcript = page.get_by_test_id("transcript")
    # Settings from the page's URL: the token, and seeds (text appears either way).
    page.goto(f"http://127.0.0.1:{server.port}/?auth_token={TOKEN}&text_seed=42&audio_seed=7")
    expect(status).to_have_attribute("data-state", "idle")
    expect(page.get_by_test_id("stats")).to_have_text("sent 0.0 s · received 0.0 s · buffer 0 ms")
    expect(button).to_have_text("Start conversation")

    button.click()
    expect(status).to_have_attribute("data-state", "live")
    expect(status).to_have_text("Live: talk to Moshi")
    expect(button).to_have_text("End conversation")
    expect(transcript).to_have_text(re.compile(r"\w"))
    page.wait_for_function(
        """([seconds, pattern]) => {
            const text = document.querySelector('[data-testid="stats"]').textContent;
            const m = text.match(new RegExp(pattern));
            return m !== null && Number(m[1]) >= seconds && Number(m[2]) >= seconds;
        }""",
        arg=[AUDIO_SECONDS, STATS.pattern],
    )
    screenshot(page, "browser-conversation.png")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    screenshot(page, "browser-conversation-phone.png")
    words = transcript.text_content()

    button.click()
    expect(status).to_have_attribute("data-state", "ended")
    expect(status).to_have_text("You ended the conversation.")
    expect(page.locator(".notice")).to_be_hidden()
    sent_s, received_s = stats_seconds(page)
    assert sent_s >= AUDIO_SECONDS and received_s >= AUDIO_SECONDS
    assert transcript.text_content().startswith(words.strip()), "the transcript was rewritten"

    # On the wire: one conversation, the handshake first, then Ogg/Opus both ways and text.
    assert len(traffic.urls) == 1 and traffic.urls[0].startswith(f"ws://127.0.0.1:{server.port}/api/chat?")
    assert traffic.received[0] == 0x00 and traffic.received.count(0x00) == 1
    assert set(traffic.received) <= {0x00, 0x01, 0x02}, traffic.received
    assert traffic.received.count(0x01) >= AUDIO_SECONDS * 12.5 - 2  # one per 80 ms frame
    assert 0x02 in traffic.received
    assert set(traffic.sent) == {0x01}, "the browser sends only audio"
    assert traffic.sent.count(0x01) >= AUDIO_SECONDS * 12.5  # 20 ms Opus packets, a page each
    # Speech, not silence: Opus spends far fewer than 1 kB/s on silence.
    assert traffic.audio_bytes_sent / sent_s > 1000, traffic.audio_bytes_sent
    # The server decoded the browser's Ogg/Opus into frames and answered them.
    frames = server.wait_idle()["frames"]
    assert frames["frames_in"] >= AUDIO_SECONDS * 12.5 - 2 and frames["frames_out"] >= 10, frames

    # Both voices were recorded and can be downloaded.
    download_button = page.get_by_role("button", name="Download recording")
    expect(download_button).to_be_enabled()
    with page.expect_download() as info:
        download_button.click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    assert re.fullmatch(r"moshi-conversation-.+\.(webm|ogg|m4a)", saved.name)
    assert saved.stat().st_size > 1000


def test_a_wrong_token_is_refused_on_the_page(server, page):
    from playwright.sync_api import expect

    traffic = Traffic(page)
    status = page.get_by_test_id("status")
    page.goto(f"http://127.0.0.1:{server.port}/")
    page.get_by_text("Settings").click()
    page.get_by_label("Access token").fill("not-the-token")

    page.get_by_test_id("connect").click()
    expect(status).to_have_attribute("data-state", "ended")
    expect(status).to_have_text("Refused by the server")
    notice = page.get_by_role("alert")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("authentication failed: wrong access token")
    expect(notice).to_contain_text("Check the access token in Settings.")
    expect(page.get_by_test_id("transcript")).to_be_empty()
    screenshot(page, "browser-refused.png")

    assert len(traffic.urls) == 1 and "auth_token=not-the-token" in traffic.urls[0]
    assert traffic.received == [0x05], "a 0x05 error, and no handshake"
    assert 0x01 not in traffic.sent
    assert server.wait_idle()["slots"]["used"] == 0
