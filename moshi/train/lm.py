"""`moshi train lm CONFIG.yaml`: a multistream LM fine-tuned (LoRA or full) or trained from
scratch, from a YAML config (config.py), in one process or under torchrun.

The model files come from `moshi_paths` (a hub repo and/or local files, as Kyutai's
flags); `model.config` instead starts from random weights with that architecture (or, with
`model.init_from`, from a trained model's transformer: warm_start.py). The
data: `data.train_data` (and `data.eval_data`), moshi-finetune's manifests, made into the
model's streams for `task` by moshi.train.dataset, the Mimi codes cached in `cache_dir`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..codec import load_mimi
from ..hub import locate
from ..lm.config import KyutaiConfig
from ..lm.layers import RMSNorm
from ..lm.lora import LoRAOptions, apply_lora
from ..lm.model import LMModel
from ..lm.text import TextTokenizer
from ..models import ModelFiles
from .batches import CodesDataset
from .config import TrainConfig
from .dataset import LMDataset, task_layout
from .distributed import Dist, close_distributed, init_distributed
from .lm_task import LMTrainer, LMTrainOptions, freeze_untrained
from .loss import LossOptions
from .release import Release
from .run import RunResult, prepare_run_dir, run, run_options
from .warm_start import warm_start

log = logging.getLogger(__name__)
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass(frozen=True)
class Sources:
    """The files a run's model is made from, nothing loaded yet. `weights`: the LM's files
    (`moshi_paths`); None when the model starts fresh from `model.config`."""

    config: KyutaiConfig
    mimi: Path
    mimi_config: Path | None
    tokenizer: Path
    weights: ModelFiles | None


def sources(config: TrainConfig) -> Sources:
    """Where the model, its codec and its tokenizer come from (found, or downloaded, not loaded)."""
    p = config.moshi_paths
    if config.model.config is not None:
        kcfg = KyutaiConfig.load(config.model.config)
        here = Path(config.model.config).parent
        mimi = locate(p.mimi_path or kcfg.mimi_name, p.hf_repo_id, here)
        tokenizer = locate(p.tokenizer_path or kcfg.tokenizer_name, p.hf_repo_id, here)
        name = p.mimi_config_path or kcfg.mimi_config_name
        mimi_config = locate(name, p.hf_repo_id, here) if name else None
        return Sources(kcfg, mimi, mimi_config, tokenizer, None)
    files = ModelFiles.resolve(
        hf_repo=p.hf_repo_id,
        moshi_weight=p.moshi_path,
        mimi_weight=p.mimi_path,
        mimi_config=p.mimi_config_path,
        tokenizer=p.tokenizer_path,
        config=p.config_path,
    )
    return Sources(files.config, files.mimi_weights, files.mimi_config, files.tokenizer, files)


def cache_folder(config: TrainConfig) -> Path:
    """The codes cache: `cache_dir`, else `codes_cache` beside the run directory."""
    return Path(config.cache_dir) if config.cache_dir else Path(config.run_dir).parent / "codes_cache"


@dataclass(frozen=True)
class Built:
    model: LMModel
    config: KyutaiConfig
    mimi: Path
    mimi_config: Path | None
    tokenizer: Path
    release: Release


def build_model(config: TrainConfig, d: Dist) -> Built:
    """The model to train (trainable parameters float32, frozen ones in `param_dtype` on a
    GPU), on this process's device, with LoRA applied when enabled."""
    src = sources(config)
    torch.manual_seed(config.seed)  # the same fresh weights / adapters in every process
    base: Path | None
    if src.weights is None:
        model, base = fresh_model(src.config, d.device, config.model.init_std), None
        if config.model.init_from is not None:
            warm_start(model, config.model.init_from)
    else:
        model, base = src.weights.load_lm(device=d.device, dtype=torch.float32), src.weights.lm_weights
    lora = None
    if config.lora.enable:
        c = config.lora
        lora = LoRAOptions(rank=c.rank, scaling=c.scaling, ft_embed=c.ft_embed, targets=c.targets)
        apply_lora(model, lora)
    freeze_untrained(model)
    dtype = DTYPES[config.param_dtype]
    if d.device.type == "cuda" and dtype != torch.float32:
        for param in model.parameters():
            if not param.requires_grad:
                param.data = param.data.to(dtype)
    release = Release(
        src.config, base, src.mimi, src.tokenizer, dtype, src.mimi_config, lora, config.save_adapters
    )
    return Built(model.train(), src.config, src.mimi, src.mimi_config, src.tokenizer, release)


def fresh_model(config: KyutaiConfig, device: torch.device, std: float) -> LMModel:
    """Random weights: normal(0, std), norms at one (LayerNorm biases at zero)."""
    with torch.device(device):
        model = LMModel(config.lm)
    for param in model.parameters():
        torch.nn.init.normal_(param, std=std)
    for m in model.modules():
        if isinstance(m, RMSNorm):
            torch.nn.init.ones_(m.alpha)
        elif isinstance(m, torch.nn.LayerNorm):
            m.reset_parameters()
    return model


def build_datasets(config: TrainConfig, built: Built, d: Dist) -> tuple[CodesDataset, CodesDataset | None]:
    """The manifests' datasets (dataset.py). The main process encodes the audio into the codes
    cache first; the others then find it there."""
    mimi = load_mimi(built.mimi, built.mimi_config, num_codebooks=built.config.lm.mimi_codebooks)
    cache = cache_folder(config)
    common = dict(
        mimi=mimi,
        tokenizer=built.tokenizer,
        config=built.config,
        task=config.task,
        duration_sec=config.duration_sec,
        cache_dir=cache,
        seed=config.seed,
    )
    if not config.data.train_data:
        raise ValueError("config.data.train_data: no training manifest given")
    made: tuple[CodesDataset, CodesDataset | None] | None = None
    for turn in (True, False):  # the main process first
        if d.is_main == turn:
            train = LMDataset(config.data.train_data, **common)  # type: ignore[arg-type]
            evaluation = None
            if config.data.eval_data:
                evaluation = LMDataset(config.data.eval_data, random_crop=False, **common)  # type: ignore[arg-type]
            made = (train, evaluation)
        d.barrier()
    assert made is not None
    return made


def reply_markers(config: TrainConfig, built: Built) -> tuple[int, int] | None:
    """(Moshi's, the user's) turn markers when the text stream has them (a dialogue model that
    writes down the user's words): where its replies are (loss.py). A `reply_weight` other
    than 1 needs them (LMTrainOptions.check)."""
    if config.task == "dialogue" and task_layout("dialogue", built.config).user_delay_s is not None:
        tokenizer = TextTokenizer(built.tokenizer)
        return (tokenizer.moshi_turn_id, tokenizer.user_turn_id)
    return None


def train_options(config: TrainConfig, turn_ids: tuple[int, int] | None = None) -> LMTrainOptions:
    """`turn_ids`: (Moshi's, the user's) turn markers where the text stream has them (replies: loss.py)."""
    o = config.optim
    return LMTrainOptions(
        max_steps=config.max_steps,
        lr=o.lr,
        weight_decay=o.weight_decay,
        pct_start=o.pct_start,
        max_norm=config.max_norm,
        batch_size=config.batch_size,
        num_microbatches=config.num_microbatches,
        seed=config.seed,
        shuffle=config.data.shuffle,
        loss=LossOptions(
            config.text_padding_weight,
            config.first_codebook_weight_multiplier,
            config.text_loss_weight,
            config.reply_weight,
            turn_ids,
        ),
        gradient_checkpointing=config.gradient_checkpointing,
        fsdp=config.fsdp,
        eval_batches=config.eval_batches,
        input_dropout=config.input_dropout,
        own_audio=config.own_audio,
        own_audio_temp=config.own_audio_temp,
    )


def main(
    config: TrainConfig,
    until_step: int | None = None,
    progress: bool = True,
    datasets: tuple[CodesDataset, CodesDataset | None] | None = None,
) -> RunResult:
    """Train as `config` says; `datasets` (train, eval) replace the manifests' (tests)."""
    d = init_distributed(config.device)
    try:
        run_dir = prepare_run_dir(config.run_dir, config.overwrite_run_dir, config.to_dict(), d)
        built = build_model(config, d)
        turn_ids = reply_markers(config, built)
        options = train_options(config, turn_ids)
        options.check(built.model.config)  # before the codes cache
        train, evaluation = datasets or build_datasets(config, built, d)
        trainer = LMTrainer(built.model, train, options, d, built.release, evaluation)
        return run(trainer, run_options(config, run_dir, until_step, progress), d)
    finally:
        close_distributed()
