"""What a service's operators read: /metrics (Prometheus), the health status the balancer
routes on, the windowed figures, and JSON log lines."""

import asyncio
import io
import json
import logging

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from moshi.stream import logs
from moshi.stream.client import Client, ServerError
from moshi.stream.engine import Engine
from moshi.stream.server import BUSY_MESSAGE
from moshi.stream.window import MAX_WINDOW_S, WindowedPercentiles
from tests.support.server import (
    FRAME,
    HANG_GUARD_S,
    ServerThread,
    http_get,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """/metrics parsed by the client library's own parser: {(sample name, labels): value}."""
    status, headers, body = http_get(port, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def talk(url: str, pcm: np.ndarray) -> int:
    """One conversation: send `pcm` at about real time, count the audio answers."""
    client = await asyncio.wait_for(Client.connect(url), HANG_GUARD_S)
    answers = 0
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        await client.send_pcm(pcm[i : i + FRAME])
        await asyncio.sleep(0.04)
    await asyncio.sleep(0.3)
    await client.close()
    async for event in client.events():
        answers += type(event).__name__ == "AudioEvent"
    return answers


def test_metrics_count_what_happens(tiny_parts, speech):
    with ServerThread(Engine(*tiny_parts, max_sessions=1), worker="w1") as server:
        w = (("worker", "w1"),)
        before = scrape(server.port)
        assert before[("moshi_slots_total", w)] == 1 and before[("moshi_slots_free", w)] == 1
        assert before[("moshi_conversations_total", w)] == 0
        assert before[("moshi_refusals_total", (("reason", "busy"), *w))] == 0

        async def busy_then_talk() -> None:
            first = await Client.connect(server.url)  # holds the only slot
            with pytest.raises(ServerError, match="server busy"):
                await Client.connect(server.url)
            await first.close()
            server.wait_idle()
            await talk(server.url, speech[: 10 * FRAME])

        asyncio.run(busy_then_talk())
        server.wait_idle()
        after = scrape(server.port)
    assert after[("moshi_conversations_total", w)] == 2
    assert after[("moshi_refusals_total", (("reason", "busy"), *w))] == 1
    assert after[("moshi_conversations_active", w)] == 0
    assert after[("moshi_frames_total", (("kind", "in"), *w))] >= 9
    assert after[("moshi_frames_total", (("kind", "out"), *w))] >= 8
    assert after[("moshi_step_seconds_count", w)] >= 9
    assert after[("moshi_added_latency_seconds_count", w)] >= 8
    assert (
        after[("moshi_step_seconds_bucket", (("le", "+Inf"), *w))] == after[("moshi_step_seconds_count", w)]
    )


def test_health_answers_503_when_full(tiny_parts):
    with ServerThread(Engine(*tiny_parts, max_sessions=1)) as server:
        status, _, body = http_get(server.port, "/api/health")
        assert status == 200 and json.loads(body)["status"] == "ready"

        async def hold() -> None:
            client = await Client.connect(server.url)
            status, _, body = await asyncio.to_thread(http_get, server.port, "/api/health")
            assert status == 503 and json.loads(body)["status"] == "full"  # the same report
            await client.close()

        asyncio.run(hold())
        server.wait_idle()
        assert http_get(server.port, "/api/health")[0] == 200
        assert BUSY_MESSAGE.startswith("server busy")


@pytest.mark.parametrize("window", ["nan", "inf", "-1", "0", str(MAX_WINDOW_S + 1), "x"])
def test_a_window_out_of_range_is_a_400(tiny_parts, window):
    with ServerThread(Engine(*tiny_parts, max_sessions=1)) as server:
        status, _, body = http_get(server.port, f"/api/health?window={window}")
    assert status == 400 and b"window must be" in body


def test_windowed_percentiles_are_within_a_bin():
    w = WindowedPercentiles(horizon_s=60)
    rng = np.random.default_rng(0)
    old = rng.uniform(100, 200, 1000)  # 30 s ago: outside a 10 s window
    new = rng.lognormal(np.log(12), 0.5, 5000)
    for v in old:
        w.add(float(v), now=970.5)
    for i, v in enumerate(new):
        w.add(float(v), now=995 + i / 1000)
    got = w.percentiles(10, now=1000.2)
    for q in (50, 90, 99):
        assert abs(got[f"p{q}"] / np.percentile(new, q) - 1) < 0.07, (q, got)
    assert w.percentiles(60, now=1000.2)["p99"] > 100  # the old samples are in the long window
    assert w.percentiles(10, now=1100) == {}  # all of it has aged out
    with pytest.raises(ValueError, match="window"):
        w.percentiles(61, now=1000)


def test_json_log_lines_carry_the_event_fields():
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logs.configure("json")
    try:
        ours = [h for h in root.handlers if type(h) is logging.StreamHandler]
        kept = [h for h in handlers if type(h) is not logging.StreamHandler]
        assert len(ours) == 1 and all(h in root.handlers for h in kept)  # a test runner's capture stays
        ours[0].setStream(stream)
        logging.getLogger("moshi.stream.server").info(
            "conversation %s ended", "abc", extra={"event": "end", "conversation": "abc", "seconds": 1.5}
        )
    finally:
        root.handlers[:], root.level = handlers, level
    line = json.loads(stream.getvalue().strip())
    assert line["message"] == "conversation abc ended" and line["level"] == "INFO"
    assert (line["event"], line["conversation"], line["seconds"]) == ("end", "abc", 1.5)
    with pytest.raises(ValueError, match="log format"):
        logs.configure("xml")
