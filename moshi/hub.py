"""Where files come from: a local path, a `file://` URI, `hf://owner/repo/path`, or a file
of a Hugging Face repo (downloaded through `huggingface_hub`, with its progress bar and cache).
"""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT_REPO = "kyutai/moshiko-pytorch-bf16"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hf_download(repo: str, filename: str) -> Path:
    """One file of a hub repo, from the local cache or downloaded (with a progress bar)."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, filename))
    except Exception as e:  # network, missing file, auth: one clear message
        raise FileNotFoundError(f"could not get {filename!r} from the hub repo {repo!r}: {e}") from e


def try_hf_download(repo: str, filename: str) -> Path | None:
    """Like `hf_download`, but None when the repo has no such file (or it cannot be reached
    and is not cached)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo, filename))
    except (EntryNotFoundError, LocalEntryNotFoundError):
        return None


def is_repo_id(spec: str | Path) -> bool:
    """`owner/name` that is not an existing local path."""
    s = str(spec)
    return bool(_REPO_ID.match(s)) and not Path(s).expanduser().exists()


def locate(spec: str | Path, hf_repo: str | None = None, base_dir: Path | None = None) -> Path:
    """A local path for a file spec:

    - `file://PATH`, or an absolute path: that file;
    - `hf://owner/repo/path/in/repo`: that file of that repo;
    - a relative path: under `base_dir` (e.g. the folder of the config that names it) or the
      working directory if it exists there, else that file name in `hf_repo`.
    """
    s = str(spec)
    if s.startswith("file://"):
        return _existing(Path(s[len("file://") :]))
    if s.startswith("hf://"):
        parts = s[len("hf://") :].split("/", 2)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"expected hf://owner/repo/path, got {s!r}")
        return hf_download(f"{parts[0]}/{parts[1]}", parts[2])
    path = Path(s).expanduser()
    if path.is_absolute():
        return _existing(path)
    for candidate in ([base_dir / path] if base_dir is not None else []) + [path]:
        if candidate.is_file():
            return candidate
    if hf_repo is None:
        raise FileNotFoundError(f"no such file: {s}")
    return hf_download(hf_repo, s)


def resolve_file(spec: str | Path | None, default_repo: str, default_name: str) -> Path:
    """A weights argument: None (`default_name` of `default_repo`), a hub repo id
    (`default_name` of that repo), or any spec `locate` takes."""
    if spec is None:
        return hf_download(default_repo, default_name)
    if is_repo_id(spec):
        return hf_download(str(spec), default_name)
    return locate(spec)


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path
