"""The offline jobs' file helpers: the progress bar's numbers are rounded."""

from tqdm import tqdm

from moshi.audio import FRAME_RATE
from moshi.cli.files import BAR_FORMAT


def test_progress_shows_rounded_seconds():
    line = tqdm.format_meter(
        1136, 3948, 2.0, unit_scale=1 / FRAME_RATE, bar_format=BAR_FORMAT, prefix="talking"
    )
    assert "90.9/315.8 s" in line, line
