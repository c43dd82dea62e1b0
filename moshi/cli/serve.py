"""`moshi serve`: load a dialogue model, then serve it over websockets with the web client
(see `moshi.stream.server`; the defaults are `ServerConfig`'s)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from pathlib import Path

from ..stream import protocol, routes, tls
from ..stream.engine import Engine
from ..stream.server import Server, ServerConfig
from .common import (
    DIALOGUE_REPO,
    UserError,
    add_model_args,
    device_of,
    dtype_of,
    model_files,
    quantize_if_asked,
)

log = logging.getLogger(__name__)


def _web_dir() -> Path:
    """The browser client: web/ of a source checkout, else the copy a wheel installs as
    moshi/web (see pyproject.toml)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package.parent / "web", package / "web"):
        if (candidate / "index.html").is_file():
            return candidate
    return package / "web"


WEB_DIR = _web_dir()
AUTH_ENV = "MOSHI_AUTH_TOKEN"  # the token without putting it on the command line
DEFAULT_MAX_SESSIONS = 4


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve Moshi over websockets, with the web client",
        description="Serve Moshi over websockets (Kyutai's protocol) and the web client.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = parser.add_argument_group("server")
    g.add_argument("--host", default=ServerConfig.host, help="interface to listen on (0.0.0.0: all of them)")
    g.add_argument("--port", type=int, default=ServerConfig.port, help="TCP port (0: any free one)")
    g.add_argument(
        "--max-sessions",
        type=int,
        default=DEFAULT_MAX_SESSIONS,
        help="conversations served at once, batched in one model step; more get 'server busy'",
    )
    g.add_argument(
        "--static",
        default=str(WEB_DIR) if WEB_DIR.is_dir() else "none",
        help="folder served at / (the web client), or 'none'",
    )
    g.add_argument(
        "--auth-token",
        help=f"clients must present this token (?auth_token= or 'Authorization: Bearer'); "
        f"also read from ${AUTH_ENV}",
    )
    g.add_argument(
        "--allowed-origins",
        nargs="+",
        metavar="ORIGIN",
        help="web pages allowed to connect, e.g. https://example.com (the server's own page always "
        "is; default: any)",
    )
    secure = g.add_mutually_exclusive_group()
    secure.add_argument("--ssl", metavar="DIR", help="serve https/wss with DIR/cert.pem and DIR/key.pem")
    secure.add_argument(
        "--ssl-self-signed",
        action="store_true",
        help="serve https/wss with a certificate made at start-up (browsers ask to accept it)",
    )
    g.add_argument(
        "--input-backlog",
        type=int,
        default=ServerConfig.input_backlog,
        help="input frames queued per conversation before the oldest are dropped (raise it to "
        "process every frame of a client that sends faster than real time)",
    )
    add_model_args(parser, DIALOGUE_REPO)
    parser.set_defaults(run=run)


def build_server(args: argparse.Namespace) -> Server:
    """Load the model the flags name and configure a server for it (not started)."""
    if args.max_sessions < 1 or args.input_backlog < 1:
        raise UserError("--max-sessions and --input-backlog must be at least 1")
    device = device_of(args)
    files = model_files(args)
    context = None
    if args.ssl:
        try:
            context = tls.context_from_dir(args.ssl)
        except ValueError as e:
            raise UserError(str(e)) from None
    elif args.ssl_self_signed:
        cert, key = tls.self_signed([args.host])
        context = tls.context_from_pem(cert, key)
        log.info("self-signed certificate, SHA-256 fingerprint %s", tls.fingerprint(cert))
    static = None if args.static == "none" else Path(args.static)
    if static is not None and not (static / "index.html").is_file():
        raise UserError(f"--static {static}: no index.html there (use --static none to serve no page)")
    log.info("loading the model on %s", device)
    try:
        mimi, lm = files.load_mimi(device), files.load_lm(device, dtype_of(args, device))
        quantize_if_asked(args, device, lm, mimi)
        engine = Engine(mimi, lm, files.load_tokenizer(), max_sessions=args.max_sessions)
    except ValueError as e:
        raise UserError(f"cannot serve this model: {e}") from None
    config = ServerConfig(
        host=args.host,
        port=args.port,
        static_dir=static,
        model_name=str(args.moshi_weight or args.config or args.hf_repo),
        auth_token=args.auth_token or os.environ.get(AUTH_ENV) or None,
        allowed_origins=tuple(args.allowed_origins) if args.allowed_origins else None,
        ssl=context,
        input_backlog=args.input_backlog,
    )
    return Server(engine, config)


def run(args: argparse.Namespace) -> int:
    logging.getLogger("websockets").setLevel(logging.WARNING)  # not a line per HTTP request
    server = build_server(args)
    try:
        asyncio.run(_serve(server))
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {e}") from None
    return 0


async def _serve(server: Server) -> None:
    async with server:
        c = server.config
        host = socket.gethostname() if c.host in ("0.0.0.0", "::") else c.host
        base = f"{'https' if c.ssl else 'http'}://{host}:{server.port}"
        page = f"{base}/" if c.static_dir else "no web page (--static none)"
        log.info("serving %d conversations at once: %s", server.engine.max_sessions, page)
        chat = base.replace("http", "ws", 1) + protocol.CHAT_PATH
        log.info("websocket %s, health %s%s", chat, base, routes.HEALTH_PATH)
        await asyncio.Future()  # until interrupted
