"""Training Mimi: a tiny codec overfits two clips; the full step (discriminator, distillation)
runs; a run's checkpoint is a Mimi file that load_mimi reads."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from moshi.audio import read_audio, write_wav
from moshi.codec import load_mimi, save_mimi
from moshi.codec.quantizer import VQTraining
from moshi.train.codec import CodecTrainConfig, main
from moshi.train.codec.config import CodecDataConfig, CodecLossConfig, CodecModelConfig, DistillConfig
from moshi.train.codec.data import AudioCrops
from moshi.train.codec.train import build_trainer
from tests.support.fixtures import FIXTURES
from tests.support.train import TINY_MIMI, clips
from tests.support.train import codec_config as config

OVERFIT_STEPS = 50
OVERFIT_RATIO = 0.5  # the multi-scale log-mel loss falls below half its first value


@pytest.fixture
def one_thread():
    """Tiny convolutions are many times faster on one thread than on two busy ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tiny_mimi_overfits_two_clips(tmp_path, one_thread):
    cfg = config(
        tmp_path,
        quantizer=VQTraining(quantize_rate=1.0, quantizer_dropout=False),
        loss=CodecLossConfig(adversarial=0, feature_matching=0),
        max_steps=OVERFIT_STEPS,
    )
    cfg = cfg.__class__(**{**cfg.__dict__, "optim": cfg.optim.__class__(lr=3e-3, final_lr=3e-3)})
    trainer = build_trainer(cfg, torch.device("cpu"))
    pcm = clips()
    mel = [trainer.step(pcm, step)["mel"] for step in range(OVERFIT_STEPS)]
    assert min(mel[-5:]) < OVERFIT_RATIO * mel[0], mel


def test_full_step_with_discriminator_and_distillation(tmp_path, one_thread):
    teacher = DistillConfig(teacher="moshi.train.codec.distill:log_mel_teacher", teacher_kwargs={"n_mels": 8})
    losses = CodecLossConfig(envelope=1.0)
    trainer = build_trainer(config(tmp_path, distill=teacher, loss=losses), torch.device("cpu"))
    assert trainer.disc is not None and trainer.generator.distiller is not None
    disc_before = [p.detach().clone() for p in trainer.disc.parameters()]
    proj_before = trainer.generator.distiller.projection.weight.detach().clone()
    for step in range(2):
        metrics = trainer.step(clips(0.16), step)
    expected = {
        "loss",
        "mel",
        "waveform",
        "envelope",
        "commitment",
        "distill",
        "adversarial",
        "feature_matching",
        "discriminator",
    }
    assert expected <= metrics.keys()
    assert all(math.isfinite(v) for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(disc_before, trainer.disc.parameters(), strict=True))
    assert not torch.equal(proj_before, trainer.generator.distiller.projection.weight)
    assert "teacher" not in "".join(trainer.generator.state_dict())


def test_adversarial_start_delays_the_discriminator(tmp_path, one_thread):
    trainer = build_trainer(config(tmp_path, loss=CodecLossConfig(adversarial_start=5)), torch.device("cpu"))
    assert "discriminator" not in trainer.step(clips(0.16), 0)


def write_manifest(folder) -> str:
    lines = []
    for i, clip in enumerate(clips()):
        write_wav(folder / f"clip{i}.wav", clip[0].numpy())
        lines.append(json.dumps({"path": f"clip{i}.wav", "duration": 0.32}))
    (folder / "data.jsonl").write_text("\n".join(lines) + "\n")
    return str(folder / "data.jsonl")


def run(cfg, **kw):
    return main(cfg, progress=False, **kw)


def test_run_writes_a_checkpoint_that_load_mimi_reads(tmp_path, one_thread):
    cfg = config(
        tmp_path, data=CodecDataConfig(train_data=write_manifest(tmp_path)), do_eval=True, eval_batches=1
    )
    result = run(cfg)
    folder = result.checkpoint / "consolidated"
    mimi = load_mimi(folder / "mimi.safetensors", folder / "mimi_config.json", num_codebooks=4)
    codes = mimi.encode(clips())
    assert codes.shape == (2, 4, 4)
    assert mimi.decode(codes).shape == (2, 1, 4 * 1920)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(line["split"], line["step"]) for line in lines] == [
        ("train", 1),
        ("train", 2),
        ("train", 3),
        ("eval", 3),
    ]
    assert lines[0]["frames"] == 4 and lines[0]["frames_per_s"] > 0
    # Kyutai's layout: its key names, its config format.
    from safetensors import safe_open

    with safe_open(folder / "mimi.safetensors", "pt") as f:
        keys = set(f.keys())
    assert "downsample.conv.conv.conv.weight" in keys
    assert "quantizer.rvq_rest.vq.layers.0._codebook.embedding_sum" in keys
    assert json.loads((folder / "mimi_config.json").read_text())["quantizer"]["n_q"] == 4


def test_resumed_run_gives_the_same_losses(tmp_path, one_thread):
    data = AudioCrops([c[0].numpy() for c in clips()], 1920 * 2)
    straight = config(tmp_path / "a", max_steps=4)
    run(straight, data=data)
    stopped = config(tmp_path / "b", max_steps=4)
    assert run(stopped, data=data, until_step=2).step == 2
    assert run(stopped, data=data).step == 4

    def losses(cfg):
        lines = (Path(cfg.run_dir) / "metrics.jsonl").read_text().splitlines()
        return [(json.loads(line)["mel"], json.loads(line)["discriminator"]) for line in lines]

    assert len(losses(stopped)) == 4
    np.testing.assert_allclose(losses(stopped), losses(straight), rtol=1e-5)


def test_yaml_config(tmp_path):
    path = tmp_path / "codec.yaml"
    path.write_text(
        "run_dir: run\n"
        "model: {preset: mimi-small, mimi: {ratios: [8, 6, 5, 4], n_filters: 8}}\n"
        "discriminator: {n_ffts: [512, 128]}\n"
        "quantizer: {quantize_rate: 1.0}\n"
        "distill: {teacher: 'moshi.train.codec.distill:log_mel_teacher', teacher_kwargs: {n_mels: 8}}\n"
    )
    cfg = CodecTrainConfig.load(path)
    assert cfg.model.architecture().n_filters == 8 and cfg.model.architecture().total_codebooks == 8
    assert cfg.discriminator.n_ffts == (512, 128) and cfg.quantizer.quantize_rate == 1.0
    path.write_text("run_dir: run\nloss: {mell: 1.0}\n")
    with pytest.raises(ValueError, match=r"config\.loss\.mell"):
        CodecTrainConfig.load(path)


def test_training_from_released_weights(tmp_path, one_thread):
    tiny = FIXTURES / "mimi_tiny"
    model = CodecModelConfig(config=str(tiny / "config.json"), weights=str(tiny / "weights.safetensors"))
    trainer = build_trainer(config(tmp_path, model=model), torch.device("cpu"))
    before = load_mimi(tiny / "weights.safetensors", tiny / "config.json")
    after = trainer.generator.mimi
    torch.testing.assert_close(
        before.quantizer.rvq_first.codebooks[0].centroids, after.quantizer.rvq_first.codebooks[0].centroids
    )
    trainer.step(clips(0.16), 0)
    assert not torch.equal(before.encoder.model[0].conv.weight, after.encoder.model[0].conv.weight)
    assert not torch.equal(
        before.quantizer.rvq_first.codebooks[0].cluster_usage,
        after.quantizer.rvq_first.codebooks[0].cluster_usage,
    )


def test_decoder_only_keeps_the_codes(tmp_path, one_thread):
    """Phase two of a codec: the decoder learns, the encoder and codebooks (so every code) stay."""
    tiny = FIXTURES / "mimi_tiny"
    model = CodecModelConfig(
        config=str(tiny / "config.json"), weights=str(tiny / "weights.safetensors"), decoder_only=True
    )
    trainer = build_trainer(config(tmp_path, model=model), torch.device("cpu"))
    after = trainer.generator.mimi
    before = load_mimi(tiny / "weights.safetensors", tiny / "config.json", num_codebooks=after.num_codebooks)
    pcm = clips(0.16)
    for step in range(2):
        trainer.step(pcm, step)
    assert torch.equal(before.encode(pcm), after.encode(pcm))
    for name, p in before.state_dict().items():
        if name.startswith(("encoder", "downsample", "quantizer")):
            assert torch.equal(p, after.state_dict()[name]), name
    assert not torch.equal(before.decoder.model[0].conv.weight, after.decoder.model[0].conv.weight)
    with pytest.raises(ValueError, match=r"needs model\.weights"):
        CodecModelConfig(decoder_only=True)


def test_save_mimi_round_trip(tmp_path):
    tiny = FIXTURES / "mimi_tiny"
    mimi = load_mimi(tiny / "weights.safetensors", tiny / "config.json")
    save_mimi(mimi, tmp_path / "m.safetensors", tmp_path / "m.json")
    again = load_mimi(tmp_path / "m.safetensors", tmp_path / "m.json")
    pcm = torch.randn(1, 1, 3 * 1920)
    assert torch.equal(mimi.encode(pcm), again.encode(pcm))
    from safetensors import safe_open

    with safe_open(tiny / "weights.safetensors", "pt") as a, safe_open(tmp_path / "m.safetensors", "pt") as b:
        assert set(a.keys()) == set(b.keys())


def test_config_errors(tmp_path):
    with pytest.raises(ValueError, match="n_filterz"):
        config(tmp_path, model=CodecModelConfig(mimi={"n_filterz": 3})).model.architecture()
    with pytest.raises(ValueError, match="unknown Mimi preset"):
        CodecModelConfig(preset="huge").architecture()
    with pytest.raises(ValueError, match=r"package\.module:factory"):
        build_trainer(config(tmp_path, distill=DistillConfig(teacher="nocolon")), torch.device("cpu"))
    with pytest.raises(ValueError, match="batch_size"):
        config(tmp_path, batch_size=0)


def test_manifest_skips_unreadable_files(tmp_path, caplog):
    write_manifest(tmp_path)
    with (tmp_path / "data.jsonl").open("a") as f:
        f.write(json.dumps({"path": "missing.wav", "duration": 1.0}) + "\n")
    data = AudioCrops.from_manifest(tmp_path / "data.jsonl", 24_000, 1920)
    assert len(data.clips) == 2 and "missing.wav" in caplog.text
    batch = data.batch(3, torch.Generator().manual_seed(0))
    assert batch.shape == (3, 1, 1920) and np.isfinite(batch.numpy()).all()


def test_files_at_the_codec_rate_stay_on_disk(tmp_path):
    """A stereo file at the codec's rate is read a crop at a time, a 16 kHz one into memory;
    the crops are those of the files read whole (a corpus need not fit in memory)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    sf.write(tmp_path / "stereo.wav", 0.3 * rng.standard_normal((12_000, 2)), 24_000)
    sf.write(tmp_path / "narrow.wav", 0.3 * rng.standard_normal(4_000), 16_000)
    (tmp_path / "data.jsonl").write_text(
        "".join(json.dumps({"path": f"{n}.wav", "duration": 0.5}) + "\n" for n in ("stereo", "narrow"))
    )
    data = AudioCrops.from_manifest(tmp_path / "data.jsonl", 24_000, 1920)
    assert [type(c).__name__ for c in data.clips] == ["FileClip", "MemoryClip"]
    whole = AudioCrops([read_audio(tmp_path / f"{n}.wav", 24_000) for n in ("stereo", "narrow")], 1920)
    for seed in range(3):
        ours, theirs = (d.batch(4, torch.Generator().manual_seed(seed)) for d in (data, whole))
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_moshi_train_codec_command(tmp_path, capsys, one_thread):
    from moshi.cli.main import main as moshi_main

    manifest = write_manifest(tmp_path)
    settings = {
        "run_dir": str(tmp_path / "run"),
        "data": {"train_data": manifest},
        "model": {"mimi": TINY_MIMI},
        "discriminator": {"filters": 4, "max_filters": 8, "n_ffts": [256, 64]},
        "batch_size": 2,
        "duration_sec": 0.16,
        "max_steps": 2,
    }
    path = tmp_path / "codec.yaml"
    path.write_text(json.dumps(settings))  # JSON is YAML
    assert moshi_main(["train", "codec", str(path), "--no-progress"]) == 0
    folder = tmp_path / "run" / "checkpoints" / "checkpoint_000002" / "consolidated"
    assert (
        load_mimi(folder / "mimi.safetensors", folder / "mimi_config.json", num_codebooks=4).num_codebooks
        == 4
    )
    path.write_text(json.dumps({**settings, "batch_sise": 2}))
    assert moshi_main(["train", "codec", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.batch_sise" in err[0]
