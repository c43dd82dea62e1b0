"""Log lines for collectors: one JSON object per line (`moshi serve --log-format json`).

The server logs one line per event (a conversation's start and end, a refusal) and puts
the event's fields in the record's `extra`; the text format shows the message, the JSON
format the message and those fields:

    {"time": "2026-11-30T15:59:02.114Z", "level": "INFO", "logger": "moshi.stream.server",
     "message": "conversation 3f2a... ended after 12.3 s: ...", "event": "end",
     "conversation": "3f2a...", "seconds": 12.3, "frames_in": 154, ...}
"""

from __future__ import annotations

import json
import logging
import time

EVENT_FIELDS = (
    "event", "conversation", "reason", "slot", "peer", "seconds",
    "frames_in", "frames_out", "dropped_in", "dropped_out",
)  # fmt: skip
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: getattr(record, k) for k in EVENT_FIELDS if hasattr(record, k)})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Send the process's log lines to stderr in `log_format` ("text" or "json")."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, got {log_format!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    # Replaces plain stderr handlers (`logging.basicConfig`'s, or an earlier call's); handlers
    # of other kinds (a test runner's capture, a file) stay.
    root.handlers[:] = [h for h in root.handlers if type(h) is not logging.StreamHandler] + [handler]
    root.setLevel(level)
