"""Where files come from: a local path, a `file://` URI, `hf://owner/repo/path`, or a file
of a Hugging Face repo (downloaded through `huggingface_hub`, with its progress bar and cache).
"""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT_REPO = "kyutai/moshiko-pytorch-bf16"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hf_download(repo: str, filename: str, revision: str | None = None) -> Path:
    """One file of a hub repo, from the local cache or downloaded (with a progress bar)."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, filename, revision=revision))
    except Exception as e:  # network, missing file, auth: one clear message
        raise FileNotFoundError(f"could not get {filename!r} from the hub repo {repo!r}: {e}") from e


def resolve_file(spec: str | Path | None, default_repo: str, default_name: str) -> Path:
    """A local path for `spec`:

    - None: `default_name` from `default_repo`;
    - an existing local path, or `file://PATH`: that file;
    - `hf://owner/repo/path/in/repo`: that file of that repo;
    - `owner/repo` (no such local path): `default_name` from that repo.
    """
    if spec is None:
        return hf_download(default_repo, default_name)
    s = str(spec)
    if s.startswith("file://"):
        return _existing(Path(s[len("file://") :]))
    if s.startswith("hf://"):
        parts = s[len("hf://") :].split("/", 2)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"expected hf://owner/repo/path, got {s!r}")
        return hf_download(f"{parts[0]}/{parts[1]}", parts[2])
    path = Path(s).expanduser()
    if path.exists() or not _REPO_ID.match(s):
        return _existing(path)
    return hf_download(s, default_name)


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path
