"""Refusals and limits that need a server of their own (not the shared one with a witness):
a busy refusal with a full receive queue, DNS rebinding, TLS handshakes that never finish."""

import socket
import ssl
import time

from moshi.stream import tls
from moshi.stream.engine import Engine
from tests.stream.test_server_support import (  # noqa: F401 (one_torch_thread: autouse)
    HANG_GUARD_S,
    ServerThread,
    http_get,
    one_torch_thread,
    raw_connect,
    ws_frame,
)


def test_a_refused_client_with_a_full_queue_is_closed_promptly(tiny_parts, speech):
    """Refused (busy) after queuing 40 messages: the 0x05 and the close come at once."""
    with ServerThread(Engine(*tiny_parts, max_sessions=1)) as server:
        holder, _ = raw_connect(server.port)  # takes the only slot
        sock, rest = raw_connect(server.port)
        sock.sendall(b"".join(ws_frame(b"\x01" + bytes(200)) for _ in range(40)))
        t0, data = time.monotonic(), rest
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - t0
        sock.close()
        holder.close()
    assert b"server busy" in data and elapsed < 3.0, elapsed  # not the library's 10 s timeout


def test_dns_rebinding_is_refused(tiny_parts):
    with ServerThread(
        Engine(*tiny_parts, max_sessions=1), allowed_origins=("https://moshi.example",)
    ) as server:
        evil = [("Host", f"evil.test:{server.port}"), ("Origin", f"http://evil.test:{server.port}")]
        assert http_get(server.port, "/api/chat", evil)[0] == 403
        own = [("Origin", f"http://127.0.0.1:{server.port}")]
        assert http_get(server.port, "/", own)[0] != 403


def test_a_silent_tls_connection_is_dropped_after_the_handshake_timeout(tiny_parts):
    cert, key = tls.self_signed(["127.0.0.1"])
    context = tls.context_from_pem(cert, key)
    with ServerThread(Engine(*tiny_parts, max_sessions=1), ssl=context, handshake_timeout_s=0.5) as server:
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
            assert sock.recv(1) == b""  # closed by the server, without a byte from us
        assert time.monotonic() - t0 < 5.0
        client = ssl.create_default_context()
        client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S)
        with client.wrap_socket(raw) as sock:  # a real handshake still works
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(12).startswith(b"HTTP/1.1 200")
