"""The access token, the Origin check and TLS each refuse what they should (and let the
rest through)."""

import asyncio
import ssl

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from moshi.stream import protocol, tls
from moshi.stream.client import Client, ServerError
from moshi.stream.engine import Engine
from tests.support.server import HANG_GUARD_S, ServerThread, http_get

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the tiny models: one thread

TOKEN = "s3cret-token"


async def handshake(url: str, **kwargs) -> None:
    client = await asyncio.wait_for(Client.connect(url, **kwargs), HANG_GUARD_S)
    await client.close()


def test_auth_token(tiny_parts):
    with ServerThread(Engine(*tiny_parts, max_sessions=2), auth_token=TOKEN) as server:
        with pytest.raises(ServerError, match="authentication required"):
            asyncio.run(handshake(server.url))
        with pytest.raises(ServerError, match="wrong access token"):
            asyncio.run(handshake(server.url, auth_token="guess"))
        with pytest.raises(ServerError, match="wrong access token"):
            asyncio.run(handshake(server.url, query={"auth_token": "guess"}))
        asyncio.run(handshake(server.url, auth_token=TOKEN))  # Authorization: Bearer
        asyncio.run(handshake(server.url, query={"auth_token": TOKEN}))  # as the web client does
        assert http_get(server.port, "/api/health")[0] == 401
        assert http_get(server.port, "/api/health?auth_token=guess")[0] == 401
        assert http_get(server.port, "/api/health", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        server.wait_idle()


def test_allowed_origins(tiny_parts):
    allowed = ("https://good.example",)
    with ServerThread(Engine(*tiny_parts, max_sessions=2), allowed_origins=allowed) as server:

        async def open_with(origin):
            async with connect(f"{server.url}/api/chat", origin=origin, compression=None) as ws:
                assert await asyncio.wait_for(ws.recv(), HANG_GUARD_S) == protocol.HANDSHAKE

        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(open_with("https://evil.example"))
        assert refused.value.response.status_code == 403
        asyncio.run(open_with("https://good.example"))
        asyncio.run(open_with(f"http://127.0.0.1:{server.port}"))  # the page this server serves
        asyncio.run(open_with(None))  # not a browser
        server.wait_idle()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 in a --ssl directory: (dir, cert PEM)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = tls.self_signed(["127.0.0.1"])
    (directory / tls.CERT_FILE).write_bytes(cert)
    (directory / tls.KEY_FILE).write_bytes(key)
    return directory, cert


def test_tls(tiny_parts, certificate):
    directory, cert = certificate
    with ServerThread(Engine(*tiny_parts, max_sessions=2), ssl=tls.context_from_dir(directory)) as server:
        wss = server.url.replace("ws://", "wss://")
        trusting = ssl.create_default_context(cadata=cert.decode())
        asyncio.run(handshake(wss, ssl_context=trusting))
        with pytest.raises(ssl.SSLCertVerificationError):  # not signed by a known authority
            asyncio.run(handshake(wss, ssl_context=ssl.create_default_context()))
        with pytest.raises(ConnectionError, match="no websocket server"):  # plain ws:// to TLS
            asyncio.run(handshake(server.url))
        with pytest.raises((ConnectionError, ValueError)):
            http_get(server.port, "/api/health")  # plain HTTP: no HTTP answer
        server.wait_idle()


def test_tls_directory_problems_are_named(tmp_path, certificate):
    with pytest.raises(ValueError, match=r"no cert\.pem"):
        tls.context_from_dir(tmp_path)
    (tmp_path / tls.CERT_FILE).write_text("not a certificate")
    (tmp_path / tls.KEY_FILE).write_text("not a key")
    with pytest.raises(ValueError, match="cannot load"):
        tls.context_from_dir(tmp_path)
    _, cert = certificate
    assert len(tls.fingerprint(cert).split(":")) == 32
