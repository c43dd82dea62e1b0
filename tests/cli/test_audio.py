"""Reading audio files: formats, resampling, channel mixing, and the errors."""

import numpy as np
import pytest
import soundfile as sf
import torch

from moshi.audio import AudioFileError, read_audio, resample, write_wav
from moshi.codec import load_mimi
from tests.support.fixtures import FIXTURES

SR = 24000


def test_a_sine_survives_resampling_from_common_rates(tmp_path):
    for rate in (8000, 16000, 22050, 44100, 48000):
        t = np.arange(rate) / rate  # 1 s
        path = tmp_path / f"sine_{rate}.wav"
        sf.write(path, 0.5 * np.sin(2 * np.pi * 440 * t), rate, subtype="FLOAT")
        pcm = read_audio(path)
        assert pcm.dtype == np.float32 and pcm.shape == (SR,)
        expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)
        inner = slice(1000, SR - 1000)  # the resampler's filter warms up at the edges
        assert np.abs(pcm[inner] - expected[inner]).max() < 1e-3, rate


@pytest.mark.parametrize("fmt", ["flac", "ogg", "mp3"])
def test_compressed_formats_are_read(tmp_path, speech, fmt):
    path = tmp_path / f"talk.{fmt}"
    sf.write(path, np.stack([speech[:SR], speech[:SR]], axis=1), 48000)  # stereo, 48 kHz
    pcm = read_audio(path)
    assert pcm.dtype == np.float32 and pcm.ndim == 1
    assert abs(len(pcm) - SR // 2) <= SR // 10  # mp3 adds encoder delay/padding
    assert np.abs(pcm).max() > 0.05


def test_channels_are_averaged(tmp_path):
    left, right = np.full(SR, 0.2), np.full(SR, 0.6)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    np.testing.assert_allclose(read_audio(path), 0.4, atol=1e-6)


def test_one_sample_and_silence(tmp_path):
    one = tmp_path / "one.wav"
    sf.write(one, np.array([0.25]), 16000, subtype="FLOAT")
    assert len(read_audio(one)) in (1, 2)
    assert len(resample(np.array([0.5], dtype=np.float32), 48000, SR)) == 1
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR), 44100)
    assert np.abs(read_audio(silent)).max() == 0


def test_write_wav_round_trip(tmp_path):
    pcm = (0.3 * np.sin(np.arange(SR) / 10)).astype(np.float32)
    write_wav(tmp_path / "a.wav", np.stack([pcm, -pcm], axis=1))
    back, sr = sf.read(tmp_path / "a.wav", dtype="float32")
    assert sr == SR and back.shape == (SR, 2)
    np.testing.assert_allclose(back[:, 0], pcm, atol=1e-4)


def test_bad_files_raise_one_line_errors(tmp_path):
    (tmp_path / "notes.wav").write_text("not audio")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1)), SR)
    cases = {
        tmp_path / "missing.wav": "no such file",
        tmp_path: "not a file",
        tmp_path / "notes.wav": "not an audio file",
        tmp_path / "empty.wav": "no audio",
    }
    for path, message in cases.items():
        with pytest.raises(AudioFileError, match=message) as e:
            read_audio(path)
        assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_resampled_inputs_give_the_codes_of_the_original(tmp_path, speech):
    """16 kHz stereo and 48 kHz versions of the same speech, read back at 24 kHz mono,
    give Mimi the codes of the 24 kHz original.

    "The same speech": the original is first band-limited below 8 kHz (what a 16 kHz file
    can hold), so the three files differ only by the resampler's ripple and 16-bit rounding.
    Those move Mimi's latent by ~1e-5 (relative), which flips only codes sitting on a
    quantization boundary. The issue's bound is >= 90% equal semantic codes; but the tiny
    codec's semantic codebook is nearly constant (3 values here), so that bound alone would
    pass anything. So also: >= 99% of all 32 codebooks' codes equal, and the latent within
    2e-4. Measured on this input: this resampler 100% / 4e-5; linear interpolation 98% /
    8e-4; nearest neighbour 90% / 4e-3; no resampling 51%.
    """
    mimi = load_mimi(FIXTURES / "mimi_tiny" / "weights.safetensors", FIXTURES / "mimi_tiny" / "config.json")
    mimi.set_num_codebooks(32)
    original = resample(resample(speech[: 3 * SR], SR, 16000), 16000, SR)
    at16 = resample(original, SR, 16000)
    sf.write(tmp_path / "o24.wav", original, SR, subtype="PCM_16")
    sf.write(tmp_path / "s16.wav", np.stack([1.2 * at16, 0.8 * at16], axis=1), 16000, subtype="PCM_16")
    sf.write(tmp_path / "s48.flac", resample(original, SR, 48000), 48000, subtype="PCM_16")

    def encode(pcm):
        x = torch.from_numpy(pcm)[None, None]
        return mimi.encode(x)[0], mimi.encode_to_latent(x)

    ref_codes, ref_latent = encode(read_audio(tmp_path / "o24.wav"))
    for name in ("s16.wav", "s48.flac"):
        pcm = read_audio(tmp_path / name)
        assert pcm.shape == (3 * SR,)
        codes, latent = encode(pcm)
        assert (codes[0] == ref_codes[0]).float().mean() >= 0.9, name
        assert (codes == ref_codes).float().mean() >= 0.99, name
        assert (latent - ref_latent).norm() / ref_latent.norm() < 2e-4, name
