"""Caps on open connections, counted at the TCP level (before any HTTP is read).

    ConnectionGate.opened(address) -> False: over `max_pending` (close it at once)
    ConnectionGate.over_address_cap(address) -> True: answer 429
    ConnectionGate.requested(token) / closed(token)

A connection is pending from its TCP accept (after TLS, where there is TLS: asyncio's
`ssl_handshake_timeout` bounds those) until its HTTP request has been read. A flood of
connections that never send a request is closed once `max_pending` of them wait; one
address holding more than `max_per_address` connections gets HTTP 429 for its next ones.
0 turns a cap off.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass
class GateToken:
    """One counted connection (what `opened` returns and the others take)."""

    address: str
    pending: bool = True


class ConnectionGate:
    def __init__(self, max_per_address: int, max_pending: int):
        for name, value in (("max_per_address", max_per_address), ("max_pending", max_pending)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0 (0: no cap), got {value}")
        self.max_per_address, self.max_pending = max_per_address, max_pending
        self.per_address: Counter[str] = Counter()
        self.pending = 0

    def opened(self, address: str) -> GateToken | None:
        """A new TCP connection from `address`: its token, or None when `max_pending`
        connections already wait for their request (the caller closes this one)."""
        if self.max_pending and self.pending >= self.max_pending:
            return None
        self.pending += 1
        self.per_address[address] += 1
        return GateToken(address)

    def requested(self, token: GateToken) -> None:
        """Its HTTP request has been read: no longer pending."""
        if token.pending:
            token.pending = False
            self.pending -= 1

    def over_address_cap(self, token: GateToken) -> bool:
        return bool(self.max_per_address) and self.per_address[token.address] > self.max_per_address

    def closed(self, token: GateToken) -> None:
        self.requested(token)
        self.per_address[token.address] -= 1
        if not self.per_address[token.address]:
            del self.per_address[token.address]
