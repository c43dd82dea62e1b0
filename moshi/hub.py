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
    path = try_hf_download(repo, filename)
    if path is None:
        raise FileNotFoundError(f"could not get {filename!r} from the hub repo {repo!r}: it has no such file")
    return path


def try_hf_download(repo: str, filename: str) -> Path | None:
    """Like `hf_download`, but None when the repo has no such file. A file that is neither
    cached nor reachable (offline, `HF_HUB_OFFLINE=1`, no network) is a FileNotFoundError
    saying so at once (no retries), never a missing file."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

    cached = huggingface_hub.try_to_load_from_cache(repo, filename)
    if isinstance(cached, str):
        return Path(cached)
    if cached is not None:  # the hub said so before, and the cache remembers it
        return None
    fail = f"could not get {filename!r} from the hub repo {repo!r}"
    how = "run once with a network connection (the files stay cached), or give local files"
    if constants.HF_HUB_OFFLINE:
        raise FileNotFoundError(f"{fail}: it is not in the local cache and HF_HUB_OFFLINE is set; {how}")
    try:  # one request, no retries: is the hub there, and does it have the file?
        huggingface_hub.get_hf_file_metadata(huggingface_hub.hf_hub_url(repo, filename))
    except EntryNotFoundError:
        pass  # the download below records it in the cache (for offline runs) and says so
    except RepositoryNotFoundError as e:
        raise FileNotFoundError(f"{fail}: no such repo (or it is private: `hf auth login`)") from e
    except HfHubHTTPError as e:
        raise FileNotFoundError(f"{fail}: {str(e).splitlines()[0]}") from e
    except Exception as e:  # network: DNS, connection refused, timeout
        raise FileNotFoundError(
            f"{fail}: it is not in the local cache and the hub cannot be reached ({type(e).__name__}); {how}"
        ) from e
    try:
        return Path(huggingface_hub.hf_hub_download(repo, filename))
    except EntryNotFoundError:
        return None
    except Exception as e:  # the connection dropped, disk full, ...
        raise FileNotFoundError(f"{fail}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e


def is_repo_id(spec: str | Path) -> bool:
    """`owner/name` that is not an existing local path."""
    s = str(spec)
    return bool(_REPO_ID.match(s)) and not Path(s).expanduser().exists()


def looks_local(spec: str | Path) -> bool:
    """Whether a spec a user typed can only mean a local file: it starts with `./`, `../`,
    `~` or `/`, or has a suffix and no folder (or a folder that exists here). Hub files
    are then named `hf://owner/repo/file`."""
    s = str(spec)
    if s.startswith(("./", "../", "~", "/")):
        return True
    path = Path(s)
    return bool(path.suffix) and (path.parent == Path(".") or path.parent.is_dir())


def locate(
    spec: str | Path, hf_repo: str | None = None, base_dir: Path | None = None, typed: bool = False
) -> Path:
    """A local path for a file spec:

    - `file://PATH`, or an absolute path: that file;
    - `hf://owner/repo/path/in/repo`: that file of that repo;
    - a relative path: under `base_dir` (e.g. the folder of the config that names it) or the
      working directory if it exists there, else that file name in `hf_repo` (unless the
      user `typed` it and it `looks_local`, or it goes up a folder (`..`), which no hub
      file name does: then it is a missing local file, said at once).
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
    candidates = ([base_dir / path] if base_dir is not None else []) + [path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if ".." in path.parts:  # out of its folder: local (a hub repo's file names never go up)
        raise FileNotFoundError(f"no such file: {candidates[0]}")
    if hf_repo is None or (typed and looks_local(s)):
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
