"""Reading Kyutai's config dicts so that no key is silently dropped."""

from __future__ import annotations

import warnings
from typing import Any


class ConfigReader:
    """Consumes a Kyutai config section, so that every key is either used or reported."""

    def __init__(self, data: dict[str, Any], where: str):
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be a JSON object, got {type(data).__name__}")
        self.data = dict(data)
        self.where = where

    def pop(self, key: str, default: Any = None) -> Any:
        return self.data.pop(key, default)

    def take(self, key: str, out: dict[str, Any]) -> None:
        if key in self.data:
            out[key] = self.data.pop(key)

    def rename(self, key: str, ours: str, out: dict[str, Any]) -> None:
        if key in self.data:
            out[ours] = self.data.pop(key)

    def require(self, key: str, supported: Any) -> None:
        """The key may be absent; if present it must have the one value we implement."""
        if key in self.data:
            value = self.data.pop(key)
            if value != supported:
                raise ValueError(f"{self.where}.{key}={value!r} is not supported (only {supported!r})")

    def warn_unknown(self) -> None:
        if self.data:
            warnings.warn(
                f"{self.where}: ignoring unknown keys {sorted(self.data)}", UserWarning, stacklevel=3
            )
