"""The server's Prometheus metrics (`GET /metrics`, the text exposition format).

Every series carries a `worker` label (one `moshi serve` process), so the series of
several workers behind a balancer stay apart however they are scraped.

    moshi_conversations_total            counter    conversations started
    moshi_conversations_active           gauge      conversations now
    moshi_slots_total, moshi_slots_free  gauge      conversation slots
    moshi_draining                       gauge      1 while shutting down (health answers 503)
    moshi_frames_total{kind}             counter    in, out, dropped_in, dropped_out
    moshi_refusals_total{reason}         counter    see REFUSAL_REASONS
    moshi_step_seconds                   histogram  one batched model step
    moshi_added_latency_seconds          histogram  a frame's arrival to its answer written, minus the step

Events (a conversation, a refusal, a step) update the series as they happen; the gauges
and frame counters are read from the server's state when scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REFUSAL_REASONS = ("busy", "draining", "auth", "origin", "bad_input", "idle", "error", "too_many")
FRAME_KINDS = ("in", "out", "dropped_in", "dropped_out")
STEP_BUCKETS_S = (0.005, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.1, 0.15, 0.25, 0.5, 1.0)
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class State:
    """What the server holds at a scrape."""

    active: int
    slots_total: int
    draining: bool
    frames: dict[str, int]  # FRAME_KINDS -> count since start


class _StateCollector(Collector):
    def __init__(self, worker: str, read: Callable[[], State]):
        self.worker, self.read = worker, read

    def collect(self) -> Iterator[Metric]:
        s, w = self.read(), [self.worker]
        for name, doc, value in (
            ("moshi_conversations_active", "conversations being served", s.active),
            ("moshi_slots_total", "conversation slots", s.slots_total),
            ("moshi_slots_free", "free conversation slots", s.slots_total - s.active),
            ("moshi_draining", "1 while the server drains (health answers 503)", int(s.draining)),
        ):
            gauge = GaugeMetricFamily(name, doc, labels=["worker"])
            gauge.add_metric(w, value)
            yield gauge
        frames = CounterMetricFamily(
            "moshi_frames", "80 ms audio frames: in/out, and dropped on the way", labels=["worker", "kind"]
        )
        for kind in FRAME_KINDS:
            frames.add_metric([self.worker, kind], s.frames[kind])
        yield frames


class ServerMetrics:
    """One server's metrics registry; `render()` is the `/metrics` body."""

    def __init__(self, worker: str, read_state: Callable[[], State]):
        self.worker = worker
        self.registry = CollectorRegistry()
        labels = ["worker"]
        self._conversations = Counter(
            "moshi_conversations", "conversations started", labels, registry=self.registry
        ).labels(worker)
        self._refusals = Counter(
            "moshi_refusals", "connections refused or ended by the server, by reason",
            ["worker", "reason"], registry=self.registry,
        )  # fmt: skip
        for reason in REFUSAL_REASONS:  # every reason is a series from the start (at 0)
            self._refusals.labels(worker, reason)
        self._step = Histogram(
            "moshi_step_seconds", "one batched model step", labels,
            buckets=STEP_BUCKETS_S, registry=self.registry,
        ).labels(worker)  # fmt: skip
        self._added = Histogram(
            "moshi_added_latency_seconds", "a frame's arrival to its answer written, minus the model step",
            labels, buckets=LATENCY_BUCKETS_S, registry=self.registry,
        ).labels(worker)  # fmt: skip
        self.registry.register(_StateCollector(worker, read_state))

    def conversation_started(self) -> None:
        self._conversations.inc()

    def refused(self, reason: str) -> None:
        if reason not in REFUSAL_REASONS:
            raise ValueError(f"refusal reason must be one of {REFUSAL_REASONS}, got {reason!r}")
        self._refusals.labels(self.worker, reason).inc()

    def step(self, ms: float) -> None:
        self._step.observe(ms / 1000)

    def added_latency(self, ms: float) -> None:
        self._added.observe(max(ms, 0.0) / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)
