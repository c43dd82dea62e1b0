"""For the training data tests: a manifest of files."""

import json
from pathlib import Path


def manifest(root: Path, paths: list[Path]) -> Path:
    """A .jsonl next to `root/data` listing the files by relative path (durations unread)."""
    out = root / "data.jsonl"
    lines = [json.dumps({"path": str(p.relative_to(root)), "duration": 1.0}) for p in paths]
    out.write_text("\n".join(lines) + "\n")
    return out
