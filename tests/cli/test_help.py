"""`moshi --help` and each `moshi COMMAND --help`: plain text, each default said once."""

import re

import pytest

from moshi import __version__
from moshi.cli.main import SUBCOMMANDS


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_is_plain_and_says_each_default_once(moshi, command):
    r = moshi(command, "--help")
    assert r.code == 0
    text = " ".join(r.out.split())  # argparse wraps lines
    assert "`" not in text  # markdown of the docstrings
    assert "['" not in text and "(default: None)" not in text and "(default: False)" not in text
    for option in re.split(r"\s(?=--?[a-z])", text):
        assert option.count("default") <= 1 or "sampling" in option, option
    assert not re.search(r"moshi/\w+/\w+\.py", text), "a pointer to a source file"


def test_serve_help_has_examples(moshi):
    r = moshi("serve", "--help")
    assert "examples:" in r.out and "moshi serve --host 0.0.0.0" in r.out


def test_version(moshi):
    r = moshi("--version")
    assert r.code == 0 and __version__ in r.out
