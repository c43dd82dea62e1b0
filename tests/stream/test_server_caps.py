"""The per-address and pending-handshake caps (`ServerConfig.max_connections_per_address`,
`max_pending_handshakes`): counted from the TCP accept, so idle sockets count too."""

import socket
import time

import pytest

from moshi.stream.engine import Engine
from tests.support.fixtures import tiny_model_dir
from tests.support.server import HANG_GUARD_S, ServerThread, http_get

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_connection_caps_per_address_and_pending_handshakes(tiny_parts):
    with ServerThread(
        Engine(*tiny_parts, max_sessions=1), max_connections_per_address=3, max_pending_handshakes=5
    ) as server:
        gate = server.server.gate

        def counts() -> tuple[int, int]:
            return server.call(lambda: (gate.pending, sum(gate.per_address.values())))

        def wait_counts(expected: tuple[int, int]) -> None:
            deadline = time.monotonic() + HANG_GUARD_S
            while counts() != expected:
                assert time.monotonic() < deadline, counts()
                time.sleep(0.01)

        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
        wait_counts((3, 3))
        status, _, body = http_get(server.port, "/api/health")  # a 4th from the same address
        assert (status, body.strip()) == (429, b"too many connections from this address")
        idle += [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
        wait_counts((5, 5))
        with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as over:
            assert over.recv(1) == b""  # closed at once, before any request
        for sock in idle:
            sock.close()
        wait_counts((0, 0))
        assert http_get(server.port, "/api/health")[0] == 200
        metrics = server.call(server.server.metrics.render).decode()
        assert [
            line.split()[-1]
            for line in metrics.splitlines()
            if line.startswith("moshi_refusals_total{") and 'reason="too_many"' in line
        ] == ["1.0"]


def test_moshi_serve_flags_set_the_caps(tmp_path):
    from moshi.cli.common import UserError
    from moshi.cli.main import get_parser
    from moshi.cli.serve import build_server

    config = tiny_model_dir(tmp_path / "model")
    base = ["serve", "--config", str(config), "--device", "cpu", "--port", "0", "--static", "none"]
    flags = ["--max-connections-per-address", "5", "--max-pending-handshakes", "0"]
    server = build_server(get_parser().parse_args([*base, *flags]))
    assert (server.config.max_connections_per_address, server.config.max_pending_handshakes) == (5, 0)
    assert (server.gate.max_per_address, server.gate.max_pending) == (5, 0)
    with pytest.raises(UserError, match="must be >= 0"):
        build_server(get_parser().parse_args([*base, "--max-pending-handshakes", "-1"]))
