"""One model's files (LM weights, Mimi weights, text tokenizer, configs), wherever they live.

Mirrors the model-selection flags of Kyutai's tools: a hub repo (`--hf-repo`) whose
`config.json`, if any, names the files and says what the model is; explicit files
(`--moshi-weight`, `--mimi-weight`, `--tokenizer`, `--config`) override it. A repo without
`config.json` (the Moshi 7B repos) gets the released 7B configuration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .codec import Mimi, load_mimi
from .hub import DEFAULT_REPO, locate
from .lm import KyutaiConfig, LMModel, load_lm
from .lm.text import TextTokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFiles:
    config: KyutaiConfig
    lm_weights: Path
    mimi_weights: Path
    tokenizer: Path
    mimi_config: Path | None = None
    lora_weights: Path | None = None  # LoRA adapters (the config's `lora_name`, or given)
    ear: ModelFiles | None = None  # a speech-to-text model hearing for it (`dialogue_config.ear`)

    @classmethod
    def resolve(
        cls,
        hf_repo: str | None = DEFAULT_REPO,
        moshi_weight: str | Path | None = None,
        mimi_weight: str | Path | None = None,
        tokenizer: str | Path | None = None,
        config: str | Path | dict[str, Any] | None = None,
        lora_weight: str | Path | None = None,
        mimi_config: str | Path | None = None,
    ) -> ModelFiles:
        """Find (downloading when needed) every file of a model. Only the files that are
        not given explicitly are looked up in `hf_repo`: a hub repo id, or a local folder
        laid out like one (its `config.json` names the files beside it)."""
        base_dir: Path | None = None
        if hf_repo is not None and Path(hf_repo).expanduser().is_dir():
            folder, hf_repo = Path(hf_repo).expanduser(), None
            if config is None:
                config = folder / "config.json"
                if not config.is_file():
                    raise FileNotFoundError(f"no config.json in the model folder {folder}")
        if isinstance(config, dict):
            kcfg = KyutaiConfig.parse(config)
        elif config is not None:
            path = locate(config, hf_repo, typed=True)
            base_dir = path.parent
            kcfg = KyutaiConfig.load(path)
        elif hf_repo is not None:
            kcfg, found = KyutaiConfig.from_repo(hf_repo)
            if found is None:
                log.info("no config.json in %s: using the Moshi 7B configuration", hf_repo)
        else:
            kcfg = KyutaiConfig()

        def find(explicit: str | Path | None, name: str) -> Path:
            if explicit is not None:
                return locate(explicit, hf_repo, typed=True)
            return locate(name, hf_repo, base_dir)

        any_mimi_config = mimi_config is not None or bool(kcfg.mimi_config_name)
        ear = None
        if kcfg.ear_name is not None:  # a folder beside the config's (or in its hub repo)
            ear = cls.resolve(hf_repo, config=locate(f"{kcfg.ear_name}/config.json", hf_repo, base_dir))
        return cls(
            config=kcfg,
            lm_weights=find(moshi_weight, kcfg.moshi_name),
            mimi_weights=find(mimi_weight, kcfg.mimi_name),
            tokenizer=find(tokenizer, kcfg.tokenizer_name),
            mimi_config=find(mimi_config, kcfg.mimi_config_name or "") if any_mimi_config else None,
            lora_weights=find(lora_weight, kcfg.lora_name or "") if lora_weight or kcfg.lora_name else None,
            ear=ear,
        )

    @property
    def model_type(self) -> str:
        return self.config.model_type

    def load_lm(
        self,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.bfloat16,
        n_q: int | None = None,
        fuse_lora: bool = False,
    ) -> LMModel:
        """The LM, with its LoRA adapters when there are (merged with `fuse_lora`)."""
        return load_lm(
            self.lm_weights,
            self.config,
            device,
            dtype,
            n_q,
            lora_weights=self.lora_weights,
            fuse_lora=fuse_lora,
        )

    def load_mimi(self, device: str | torch.device = "cpu", num_codebooks: int | None = None) -> Mimi:
        """Mimi with as many codebooks as the LM reads (8 for Moshi, 32 for speech-to-text)."""
        n = num_codebooks or self.config.lm.mimi_codebooks
        return load_mimi(self.mimi_weights, self.mimi_config, num_codebooks=n, device=device)

    def load_tokenizer(self) -> TextTokenizer:
        lm = self.config.lm
        hidden = (lm.text_end_padding_id, lm.text_padding_id)
        user_turns = self.config.user_text_delay_seconds is not None
        return TextTokenizer(self.tokenizer, hidden_ids=hidden, user_turns=user_turns)
