"""Options shared by `chat`, `infer` and `transcribe`: help formatting, sampling flags."""

from __future__ import annotations

import argparse
from typing import Any

from ..lm.config import KyutaiConfig
from ..lm.sampling import SamplingOptions
from .common import UserError

SAMPLING_FIELDS = ("temp", "temp_text", "top_k", "top_k_text")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows defaults (not the empty ones, None and False, nor where the help already says
    its default; lists as words), keeps descriptions' line breaks, and drops the docstrings'
    markdown backticks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        positional = not action.option_strings and action.nargs not in ("?", "*")
        if default in (None, False, argparse.SUPPRESS) or positional or "default" in text:
            return text
        if isinstance(default, (list, tuple)):
            default = " ".join(map(str, default))
        return f"{text} (default: {str(default).replace('%', '%%')})"

    def _format_text(self, text: str) -> str:
        return super()._format_text(text.replace("`", ""))

    def _expand_help(self, action: argparse.Action) -> str:
        return super()._expand_help(action).replace("`", "")


def add_subcommand(
    subparsers: Any, name: str, help: str, description: str, epilog: str | None = None
) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        name, help=help, description=description, epilog=epilog, formatter_class=HelpFormatter
    )


def add_force_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="overwrite output files that exist")


def add_sampling_args(parser: argparse.ArgumentParser) -> None:
    d = SamplingOptions()
    g = parser.add_argument_group(
        "sampling (each default: the model's lm_gen_config when it sets the value, else the value shown)"
    )
    g.add_argument(
        "--temp", type=float, metavar="T", help=f"audio tokens' temperature, 0 = greedy (else {d.temp})"
    )
    g.add_argument(
        "--temp-text",
        type=float,
        metavar="T",
        help=f"text tokens' temperature, 0 = greedy (else {d.temp_text})",
    )
    g.add_argument(
        "--top-k", type=int, metavar="K", help=f"audio tokens: sample among the K likeliest (else {d.top_k})"
    )
    g.add_argument(
        "--top-k-text",
        type=int,
        metavar="K",
        help=f"text tokens: sample among the K likeliest (else {d.top_k_text})",
    )
    g.add_argument(
        "--seed", type=int, metavar="N", help="seed, for reproducible sampling (default: a random one)"
    )


def model_sampling(config: KyutaiConfig) -> SamplingOptions:
    """SamplingOptions' defaults, with the model's `lm_gen_config` where it sets a field (what
    `moshi serve` gives a conversation whose URL sets nothing); a bad value: ValueError."""
    chosen = {name: config.lm_gen_config[name] for name in SAMPLING_FIELDS if name in config.lm_gen_config}
    try:
        return SamplingOptions(**chosen)
    except (TypeError, ValueError) as e:
        raise ValueError(f"config.lm_gen_config: {e}") from None


def sampling_options(args: argparse.Namespace, config: KyutaiConfig) -> SamplingOptions:
    """Flags first, then the model's `lm_gen_config`, then `SamplingOptions`' defaults."""
    defaults = SamplingOptions()
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for name in SAMPLING_FIELDS:
        value = getattr(args, name)
        source[name] = "--" + name.replace("_", "-")
        if value is None and name in config.lm_gen_config:
            value, source[name] = config.lm_gen_config[name], f"the model's lm_gen_config.{name}"
        values[name] = getattr(defaults, name) if value is None else value
    source["text_seed"] = source["audio_seed"] = "--seed"
    try:
        return SamplingOptions(**values, text_seed=args.seed, audio_seed=args.seed)
    except ValueError as e:
        field, _, rest = str(e).partition(" ")
        raise UserError(f"{source.get(field, field)} {rest}") from e
