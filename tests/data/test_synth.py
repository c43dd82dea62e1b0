"""Which voices can speak here, and the one-line refusal of `moshi data build` before any
work when one cannot."""

from moshi.cli import data as cli_data
from moshi.cli.main import main
from moshi.data.synth import USER_VOICES, Voice, installed


def test_a_festival_voice_needs_its_folder():
    assert not installed(Voice("festival", "no_such_voice_diphone"))
    assert sum(v.engine == "festival" for v in USER_VOICES) >= 2  # the non-espeak training voices


def test_build_names_a_missing_voice_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli_data, "available", lambda engine: True)
    monkeypatch.setattr(cli_data, "installed", lambda voice: voice.name != "ked_diphone")
    assert main(["data", "build", str(tmp_path / "c"), "--dialogues", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "festival-ked_diphone" in err and "install.sh" in err
    assert not (tmp_path / "c").exists()  # refused before any work
