"""The family shipped in moshi/small: what the manifest says is what is there, a wheel would
carry all of it, and it fits the issue's budget."""

import json
from pathlib import Path

import tomllib

from moshi.small import FOLDER, MANIFEST, shipped_kinds
from moshi.small.ship import sha256

REPO = Path(__file__).parents[2]
BUDGET = 50e6  # bytes of weights, the whole family (issue 13)


def test_the_manifest_matches_the_files():
    manifest = json.loads((FOLDER / MANIFEST).read_text())
    assert "codec" in manifest and set(shipped_kinds()) == set(manifest) & {"dialogue", "stt", "tts"}
    for name in ("codec", *shipped_kinds()):
        weights = FOLDER / manifest[name]["weights"]
        assert manifest[name]["sha256"] == sha256(weights), name
        assert manifest[name]["bytes"] == weights.stat().st_size
    assert manifest["tokenizer"]["sha256"] == sha256(FOLDER / manifest["tokenizer"]["file"])
    assert sum(p.stat().st_size for p in FOLDER.rglob("*.safetensors")) <= BUDGET


def test_a_wheel_carries_every_file():
    """setuptools expands package-data patterns with glob, relative to the package folder."""
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    carried = {p for pattern in patterns["moshi.small"] for p in FOLDER.glob(pattern)}
    data = {p for p in FOLDER.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")}
    assert data <= carried, sorted(str(p.relative_to(FOLDER)) for p in data - carried)
    assert FOLDER / "stt" / "model.safetensors" in carried
