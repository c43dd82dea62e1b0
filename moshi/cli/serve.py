"""`moshi serve`: load a dialogue model, then serve it over websockets with the web client
(see `moshi.stream.server`; the defaults are `ServerConfig`'s)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
from pathlib import Path

from ..stream import logs, protocol, routes, tls
from ..stream.engine import Engine
from ..stream.server import Server, ServerConfig
from .common import (
    UserError,
    add_model_args,
    device_of,
    dtype_of,
    model_files,
    quantize_if_asked,
)
from .loading import load_ear
from .options import add_subcommand, model_sampling

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
DEFAULT_DRAIN_S = 30.0
INTERRUPT_DRAIN_S = 1.0  # Ctrl-C drains too, but only this long
DESCRIPTION = "Serve Moshi over websockets (Kyutai's protocol) and the web client."
EXAMPLES = """examples:
  moshi serve                                       the released model; open http://127.0.0.1:8998/
  moshi serve --host 0.0.0.0 --ssl-self-signed      reachable from other machines (https)
  moshi tiny-models /tmp/tiny && moshi serve --config /tmp/tiny/dialogue/config.json --device cpu
                                                    the tiny test models: no GPU, no download
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        subparsers,
        "serve",
        help="serve Moshi over websockets, with the web client",
        description=DESCRIPTION,
        epilog=EXAMPLES,
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
    g.add_argument(
        "--drain-seconds",
        type=float,
        default=DEFAULT_DRAIN_S,
        help="on SIGTERM: stop taking conversations (health answers 503), let the running ones "
        f"go on this long, then end them with a message (Ctrl-C: at most {INTERRUPT_DRAIN_S:g} s; "
        "a second signal: at once)",
    )
    g.add_argument(
        "--max-connections-per-address",
        type=int,
        default=ServerConfig.max_connections_per_address,
        help="open connections one client address may hold; more get HTTP 429 (0: no cap; behind "
        "a balancer all come from its address: set it above --max-sessions, or 0)",
    )
    g.add_argument(
        "--max-pending-handshakes",
        type=int,
        default=ServerConfig.max_pending_handshakes,
        help="connections still waiting to send their request; more are closed at once (0: no cap)",
    )
    g.add_argument("--worker-name", help="the 'worker' label of the /metrics series (default: HOST:PORT)")
    g.add_argument(
        "--log-format",
        choices=logs.LOG_FORMATS,
        default="text",
        help="log lines as text, or JSON for collectors",
    )
    add_model_args(parser, "dialogue")
    parser.set_defaults(run=run)


def build_server(args: argparse.Namespace) -> Server:
    """Load the model the flags name and configure a server for it (not started)."""
    if args.max_sessions < 1 or args.input_backlog < 1:
        raise UserError("--max-sessions and --input-backlog must be at least 1")
    if args.max_connections_per_address < 0 or args.max_pending_handshakes < 0:
        raise UserError("--max-connections-per-address and --max-pending-handshakes must be >= 0 (0: no cap)")
    if not args.drain_seconds >= 0:
        raise UserError(f"--drain-seconds must be >= 0, got {args.drain_seconds}")
    check_port(args.host, args.port)  # before the model loads (minutes for the 7B)
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
        mimi, lm, tokenizer = (
            files.load_mimi(device),
            files.load_lm(device, dtype_of(args, device), fuse_lora=args.fuse_lora),
            files.load_tokenizer(),
        )
        ear = load_ear(files, lm, tokenizer, device, dtype_of(args, device))
        quantize_if_asked(args, device, lm, mimi)
        options = model_sampling(files.config)  # a URL's own settings override these
        engine = Engine(mimi, lm, tokenizer, max_sessions=args.max_sessions, options=options, ear=ear)
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
        max_connections_per_address=args.max_connections_per_address,
        max_pending_handshakes=args.max_pending_handshakes,
        worker=args.worker_name or "",
    )
    return Server(engine, config)


def check_port(host: str, port: int) -> None:
    """Refuse a port out of range or already in use, in one line."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be 0 to 65535, got {port}")
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
            s.bind(address)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def run(args: argparse.Namespace) -> int:
    logs.configure(args.log_format, logging.DEBUG if getattr(args, "debug", False) else logging.INFO)
    logging.getLogger("websockets").setLevel(logging.WARNING)  # not a line per HTTP request
    server = build_server(args)
    try:
        asyncio.run(_serve(server, args.drain_seconds))
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {e}") from None
    return 0


async def _serve(server: Server, drain_s: float) -> None:
    """Serve until SIGTERM or SIGINT, then drain (see `Server.drain`). The handlers are
    installed even where the signal was ignored (`moshi serve &` from a script)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    drains: list[asyncio.Task] = []

    def on_signal(grace_s: float, name: str) -> None:
        grace_s = 0.0 if stop.is_set() else grace_s  # a second signal: at once
        log.info("%s: draining (%g s)", name, grace_s)
        stop.set()
        drains.append(loop.create_task(server.drain(grace_s)))

    loop.add_signal_handler(signal.SIGTERM, on_signal, drain_s, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, on_signal, min(drain_s, INTERRUPT_DRAIN_S), "SIGINT")
    async with server:
        c = server.config
        host = socket.gethostname() if c.host in ("0.0.0.0", "::") else c.host
        base = f"{'https' if c.ssl else 'http'}://{host}:{server.port}"
        page = f"{base}/" if c.static_dir else "no web page (--static none)"
        log.info("serving %d conversations at once: %s", server.engine.max_sessions, page)
        chat = base.replace("http", "ws", 1) + protocol.CHAT_PATH
        log.info("websocket %s, health %s%s", chat, base, routes.HEALTH_PATH)
        await stop.wait()
        while drains:  # the last one to end has the shortest grace
            await drains.pop(0)
        log.info("stopped")
