"""The web client's JS run by node, and an independent (Python) Ogg reader, for the Ogg/Opus
tests of both sides."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
TOOLS = ROOT / "tests" / "web" / "tools"


def node(*args: str | Path) -> str:
    exe = shutil.which("node")
    if exe is None:
        pytest.fail("node (v20+) is needed for the web client's tests; install Node.js")
    proc = subprocess.run([exe, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(
            f"node {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


# An independent Ogg reader, to check the JS demuxer's packets and the JS
# muxer's CRCs. Ogg's CRC: polynomial 0x04C11DB7, MSB first, initial value 0, no final xor.


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


def ogg_crc(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[(crc >> 24) ^ b]
    return crc


def read_ogg(data: bytes) -> tuple[list[dict], list[bytes]]:
    """Pages (header fields, CRC checked) and whole packets of an Ogg stream."""
    pages, packets, partial, at = [], [], b"", 0
    while at < len(data):
        assert data[at : at + 4] == b"OggS", f"no capture pattern at byte {at}"
        nseg = data[at + 26]
        lacing = list(data[at + 27 : at + 27 + nseg])
        size = 27 + nseg + sum(lacing)
        page = data[at : at + size]
        crc = int.from_bytes(page[22:26], "little")
        assert ogg_crc(page[:22] + b"\0\0\0\0" + page[26:]) == crc, f"bad CRC in page at byte {at}"
        pages.append(
            {
                "type": page[5],
                "granule": int.from_bytes(page[6:14], "little", signed=True),
                "serial": int.from_bytes(page[14:18], "little"),
                "sequence": int.from_bytes(page[18:22], "little"),
                "lacing": lacing,
            }
        )
        body, pos = page[27 + nseg :], 0
        for v in lacing:
            partial += body[pos : pos + v]
            pos += v
            if v < 255:
                packets.append(partial)
                partial = b""
        at += size
    return pages, packets
