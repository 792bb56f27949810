"""Token prices and the cost of one call.

The defaults ship as package data (``pricing.yaml``, dated inside the file).
Prices drift, so a user YAML file of the same shape (``SYNTHLOOP_PRICING`` or
an explicit path) is merged over the defaults model by model. A model with
no price costs 0 and is reported as unpriced (``Pricing.is_priced``) so that
the engine can warn instead of silently under-counting a budget.

Example override file::

    models:
      my-finetune: {input: 0.3, output: 1.2}
      gpt-4.1-mini: {input: 0.35, output: 1.4}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from synthloop.llm.base import Usage

ENV_VAR = "SYNTHLOOP_PRICING"


class PricingError(ValueError):
    """A price file that cannot be read or has the wrong shape."""


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None

    def cost(self, usage: Usage) -> float:
        """Cost of one call. Cached input tokens are part of ``input_tokens`` and billed at the cache price."""
        cached = min(max(0, usage.cached_input_tokens), max(0, usage.input_tokens))
        fresh = max(0, usage.input_tokens) - cached
        cached_price = self.input if self.cached_input is None else self.cached_input
        total = fresh * self.input + cached * cached_price + max(0, usage.output_tokens) * self.output
        return total / 1_000_000.0


def _parse_table(data: Any, source: str) -> dict[str, Price]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PricingError(f"{source}: expected a mapping with a 'models' key, got {type(data).__name__}")
    models = data.get("models", {}) or {}
    if not isinstance(models, dict):
        raise PricingError(f"{source}: 'models' must be a mapping of model name to prices")
    table: dict[str, Price] = {}
    for name, entry in models.items():
        if not isinstance(entry, dict) or "input" not in entry or "output" not in entry:
            raise PricingError(f"{source}: model {name!r} needs 'input' and 'output' (USD per million tokens)")
        try:
            cached = entry.get("cached_input")
            table[str(name)] = Price(float(entry["input"]), float(entry["output"]),
                                     None if cached is None else float(cached))
        except (TypeError, ValueError) as e:
            raise PricingError(f"{source}: model {name!r} has a non-numeric price ({e})") from None
    return table


@lru_cache(maxsize=1)
def _default_table() -> tuple[dict[str, Price], str]:
    text = resources.files("synthloop.llm").joinpath("pricing.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return _parse_table(data, "pricing.yaml"), str(data.get("as_of", "unknown"))


class Pricing:
    """A price table: the shipped defaults with an optional user file merged over them."""

    def __init__(self, override_path: str | os.PathLike[str] | None = None,
                 extra: dict[str, Price] | None = None) -> None:
        defaults, self.as_of = _default_table()
        self.table: dict[str, Price] = dict(defaults)
        self.override_path = str(override_path) if override_path else None
        if override_path:
            path = Path(override_path)
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except OSError as e:
                raise PricingError(f"cannot read price file {path}: {e.strerror or e}") from None
            except yaml.YAMLError as e:
                raise PricingError(f"price file {path} is not valid YAML: {e}") from None
            self.table.update(_parse_table(data, str(path)))
        if extra:
            self.table.update(extra)
        # longest keys first so that the first prefix hit is the longest one
        self._by_length = sorted(self.table, key=len, reverse=True)

    @classmethod
    def from_env(cls, env: dict[str, str] | os._Environ[str] | None = None,
                 path: str | os.PathLike[str] | None = None) -> Pricing:
        """Defaults plus ``path`` if given, else plus ``$SYNTHLOOP_PRICING`` if set."""
        env = os.environ if env is None else env
        return cls(path or env.get(ENV_VAR) or None)

    def lookup(self, model: str) -> Price | None:
        """Price for ``model`` (``provider/`` prefix ignored): exact name, then longest prefix."""
        name = model.split("/", 1)[1] if "/" in model and model.split("/", 1)[0] in _PROVIDERS else model
        if name in self.table:
            return self.table[name]
        for key in self._by_length:
            if name.startswith(key):
                return self.table[key]
        return None

    def is_priced(self, model: str) -> bool:
        return self.lookup(model) is not None

    def cost_usd(self, model: str, usage: Usage) -> float:
        """USD for one call; 0.0 for an unpriced model (check :meth:`is_priced` to warn)."""
        price = self.lookup(model)
        return 0.0 if price is None else price.cost(usage)


_PROVIDERS = frozenset({"openai", "anthropic", "ollama"})


@lru_cache(maxsize=8)
def _cached_pricing(path: str | None) -> Pricing:
    return Pricing(path)


def default_pricing(path: str | os.PathLike[str] | None = None) -> Pricing:
    """A shared table: ``path`` if given, else ``$SYNTHLOOP_PRICING``, merged over the defaults."""
    chosen = path or os.environ.get(ENV_VAR) or None
    return _cached_pricing(str(chosen) if chosen else None)


def cost_usd(model: str, usage: Usage, pricing_path: str | os.PathLike[str] | None = None) -> float:
    """Cost of one call with the default (or overridden) table; 0.0 when the model is unpriced."""
    return default_pricing(pricing_path).cost_usd(model, usage)


def is_priced(model: str, pricing_path: str | os.PathLike[str] | None = None) -> bool:
    return default_pricing(pricing_path).is_priced(model)
