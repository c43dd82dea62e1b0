"""`moshi train cache CONFIG.yaml`: encode a run's audio into its codes cache before the run,
on every core.

`moshi train lm` encodes what its codes cache lacks when it starts, in its main process
(codes_cache.py): hours of audio take as long again on one thread, while the other cores
idle. This fills the same cache first with one process per core, each encoding a share of
the files on one thread; the run then finds every file there. Cache writes are atomic, so
it may also run beside a training run that is still filling.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..audio import AudioFileError
from ..codec import load_mimi
from .alignments import read_manifest
from .config import TrainConfig
from .dataset import Layout, task_layout
from .lm import cache_folder, sources

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Share:
    """One process's part of the work: the codec, the cache's layout, its files."""

    mimi: Path
    mimi_config: Path | None
    num_codebooks: int
    layout: Layout
    folder: Path
    files: tuple[Path, ...]
    channel_files: tuple[Path, ...]  # stereo files whose channels are items (dataset.py)


@dataclass(frozen=True)
class Filled:
    files: int  # audio files of the manifests
    encoded: int  # of those, encoded now (the rest were in the cache)
    unreadable: int  # skipped here; the training run names each one when it skips it
    folder: Path  # the cache's folder for this codec


def fill_cache(config: TrainConfig, workers: int) -> Filled:
    """Encode every audio file of the config's manifests (train and eval) that its codes
    cache lacks, with `workers` processes of one torch thread each (text-only items have none)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    src = sources(config)
    layout = task_layout(config.task, src.config)
    if not config.data.train_data:
        raise ValueError("config.data.train_data: no training manifest given")
    manifests = [m for m in (config.data.train_data, config.data.eval_data) if m]
    entries = [e for m in manifests for e in read_manifest(m) if not e.text_only]
    files = list(dict.fromkeys(e.path for e in entries if e.channel is None))
    channel_files = list(dict.fromkeys(e.path for e in entries if e.channel is not None))
    codebooks = src.config.lm.mimi_codebooks
    shares = [
        _Share(
            src.mimi, src.mimi_config, codebooks, layout, cache_folder(config),
            tuple(files[i::workers]), tuple(channel_files[i::workers]),
        )
        for i in range(min(workers, max(1, len(files) + len(channel_files))))
    ]  # fmt: skip
    start = time.monotonic()
    if len(shares) == 1:
        counts = [_encode(shares[0])]
    else:
        with multiprocessing.get_context("spawn").Pool(len(shares)) as pool:
            counts = pool.map(_encode, shares)
    encoded, unreadable = sum(c[0] for c in counts), sum(c[1] for c in counts)
    folder = counts[0][2]
    total = len(files) + len(channel_files)
    log.info(
        "%d files: %d encoded, %d already in %s, %d unreadable (%.0f s, %d processes)",
        total, encoded, total - encoded - unreadable, folder, unreadable,
        time.monotonic() - start, len(shares),
    )  # fmt: skip
    return Filled(total, encoded, unreadable, folder)


def _encode(share: _Share) -> tuple[int, int, Path]:
    """(files encoded, files unreadable, the cache's folder) of one share."""
    torch.set_num_threads(1)
    mimi = load_mimi(share.mimi, share.mimi_config, num_codebooks=share.num_codebooks)
    cache = share.layout.codes_cache(share.folder, mimi)
    stereo = share.layout.codes_cache(share.folder, mimi, channel_items=True)
    unreadable = 0
    work = [(cache.store, p) for p in share.files] + [(stereo.store, p) for p in share.channel_files]
    for store, path in work:
        try:
            store(path)
        except AudioFileError:
            unreadable += 1
    return cache.encoded + stereo.encoded, unreadable, cache.folder
