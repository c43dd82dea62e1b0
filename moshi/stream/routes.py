"""The server's HTTP side and its request checks, as pure functions over websockets'
`Request`/`Response`: static files (the web client), JSON (the health endpoint), the
access token, the Origin check, and the sampling parameters of the chat URL.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
from dataclasses import replace
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ..lm.sampling import MAX_TEMPERATURE, SamplingOptions
from .protocol import AUTH_PARAM

HEALTH_PATH = "/api/health"
EXCLUDED_STATIC_DIRS = ("test",)  # web/test holds the client's unit tests, not the app
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".wasm": "application/wasm",
    ".txt": "text/plain; charset=utf-8",
}
MAX_TOP_K = 1 << 20  # beyond any vocabulary: "the whole vocabulary"
MAX_SEED = 2**63 - 1


def response(status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> Response:
    headers = Headers(
        {
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            **(extra or {}),
        }
    )
    return Response(status, HTTPStatus(status).phrase, headers, body)


def text_response(status: int, text: str, extra: dict[str, str] | None = None) -> Response:
    return response(status, f"{text}\n".encode(), "text/plain; charset=utf-8", extra)


def json_response(obj: dict[str, Any], status: int = 200) -> Response:
    return response(status, json.dumps(obj, allow_nan=False).encode(), "application/json")


def without_body(r: Response) -> Response:
    """The answer to a HEAD request: the same status and headers (Content-Length included)."""
    return Response(r.status_code, r.reason_phrase, r.headers, b"")


def static_file(root: Path, url_path: str) -> Path | None:
    """The file under `root` that `url_path` names, or None (missing, a directory, hidden,
    excluded, or outside `root` through `..`, symlinks or encoded separators)."""
    rel = unquote(url_path).lstrip("/") or "index.html"
    parts = rel.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
        return None
    if parts[0] in EXCLUDED_STATIC_DIRS:
        return None
    try:  # a name too long for the OS, a symlink loop...: not a file we serve
        root = root.resolve()
        path = (root / rel).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
    except (OSError, RuntimeError):
        return None
    return path


def static_response(root: Path, url_path: str) -> Response:
    path = static_file(root, url_path)
    if path is None:
        return text_response(404, "not found")
    content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    try:
        body = path.read_bytes()
    except OSError:
        return text_response(404, "not found")
    return response(200, body, content_type)


# -- request checks ----------------------------------------------------------------------------
SINGLE_HEADERS = ("Origin", "Authorization", "Host")  # given twice, a request is refused


def header_problem(request: Request) -> str | None:
    """Why the request's headers are unacceptable (None when they are fine)."""
    for name in SINGLE_HEADERS:
        if len(request.headers.get_all(name)) > 1:
            return f"the {name} header is given more than once"
    return None


def presented_token(request: Request) -> str | None:
    """The access token a request carries: `Authorization: Bearer T` or `?auth_token=T`."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    values = parse_qs(urlsplit(request.path).query).get(AUTH_PARAM)
    return values[-1] if values else None


def token_problem(request: Request, expected: str | None) -> str | None:
    """Why the request is not authorized (None when it is, or no token is required)."""
    if expected is None:
        return None
    token = presented_token(request)
    if token is None:
        return f"authentication required: this server needs an access token ({AUTH_PARAM})"
    if not hmac.compare_digest(token.encode(), expected.encode()):
        return "authentication failed: wrong access token"
    return None


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def origin_allowed(
    request: Request, allowed: tuple[str, ...] | None, own_hosts: tuple[str, ...] = ()
) -> bool:
    """Browsers send `Origin`; requests without one (non-browser clients) pass, and so does
    any origin with `allowed=None`. Otherwise the origin must be in `allowed`, or be this
    server itself (the page we serve): the same host and port as the request's `Host`,
    under a name that nobody else's DNS can point at us (DNS rebinding): an IP address, a
    loopback name, or one of `own_hosts` (the names the server was started with)."""
    origin = request.headers.get("Origin")
    if allowed is None or origin is None:
        return True
    origin = origin.rstrip("/").lower()
    if origin in (a.rstrip("/").lower() for a in allowed):
        return True
    host = request.headers.get("Host", "").lower()
    if not host or urlsplit(origin).netloc != host:
        return False
    name = (urlsplit(origin).hostname or "").strip("[]")
    return name in LOOPBACK_NAMES or name in {h.lower().strip("[]") for h in own_hosts} or _is_ip(name)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def sampling_options(query: str, defaults: SamplingOptions) -> SamplingOptions:
    """The chat URL's query string -> this conversation's sampling options. Parameters
    other than `protocol.QUERY_PARAMS` are ignored (Kyutai's client sends more), and so are
    empty values (the default applies). Raises `ValueError` with a message for a person on
    a bad or out-of-range value."""
    params = parse_qs(query)
    fields: dict[str, Any] = {}
    for name, field, parse in (
        ("text_temperature", "temp_text", _temperature),
        ("text_topk", "top_k_text", _top_k),
        ("audio_temperature", "temp", _temperature),
        ("audio_topk", "top_k", _top_k),
        ("text_seed", "text_seed", _seed),
        ("audio_seed", "audio_seed", _seed),
    ):
        values = params.get(name)
        if not values:
            continue
        if len(values) > 1:
            raise ValueError(f"{name} is given {len(values)} times")
        try:
            fields[field] = parse(values[0].strip())
        except ValueError as e:
            raise ValueError(f"{name} {e}") from None
    return replace(defaults, **fields)


def _temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= MAX_TEMPERATURE:  # also false for nan
        raise ValueError(f"must be a number in [0, {MAX_TEMPERATURE}], got {text!r}")
    return value


def _integer(text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValueError(f"must be an integer in [{low}, {high}], got {text!r}")
    return value


def _top_k(text: str) -> int:
    return _integer(text, 0, MAX_TOP_K)


def _seed(text: str) -> int:
    return _integer(text, 0, MAX_SEED)
