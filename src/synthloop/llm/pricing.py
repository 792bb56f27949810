"""Token prices and the cost of one call.

The defaults ship as package data (``pricing.yaml``, dated inside the file).
Prices drift, so a user YAML file of the same shape (``SYNTHLOOP_PRICING``,
``--set llm.pricing=FILE`` or an explicit path) is merged over the defaults
model by model. A model with no price costs 0 and is reported as unpriced
(``Pricing.is_priced``) so that reports say ``unpriced`` instead of ``$0.0000``
and the engine can warn instead of silently under-counting a budget.

The shipped defaults are the list prices of the providers' own endpoints.
A run whose base URL is anything else (``--base-url``, ``OPENAI_BASE_URL``,
``ANTHROPIC_BASE_URL``: a proxy, a gateway, vLLM, another vendor's
compatible API) may serve a model under the same name at another price, or
for free, so there only the user's own price file counts
(:func:`endpoint_price`); without one the run is unpriced.

Example override file::

    models:
      my-finetune: {input: 0.3, output: 1.2}
      gpt-4.1-mini: {input: 0.35, output: 1.4}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
        #: the user's own entries (price file and ``extra``): the only ones that price a non-official endpoint
        self.user_table: dict[str, Price] = {}
        self.override_path = str(override_path) if override_path else None
        if override_path:
            path = Path(override_path)
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except OSError as e:
                raise PricingError(f"cannot read price file {path}: {e.strerror or e}") from None
            except yaml.YAMLError as e:
                raise PricingError(f"price file {path} is not valid YAML: {e}") from None
            self.user_table.update(_parse_table(data, str(path)))
        if extra:
            self.user_table.update(extra)
        self.table.update(self.user_table)
        # longest keys first so that the first prefix hit is the longest one
        self._by_length = sorted(self.table, key=len, reverse=True)
        self._user_by_length = sorted(self.user_table, key=len, reverse=True)

    @classmethod
    def from_env(cls, env: dict[str, str] | os._Environ[str] | None = None,
                 path: str | os.PathLike[str] | None = None) -> Pricing:
        """Defaults plus ``path`` if given, else plus ``$SYNTHLOOP_PRICING`` if set."""
        env = os.environ if env is None else env
        return cls(path or env.get(ENV_VAR) or None)

    def lookup(self, model: str, *, defaults: bool = True) -> Price | None:
        """Price for ``model`` (``provider/`` prefix ignored): exact name, then longest prefix.

        ``defaults=False`` looks in the user's own entries only (for endpoints other than the provider's own).
        """
        table, by_length = (self.table, self._by_length) if defaults else (self.user_table, self._user_by_length)
        name = model.split("/", 1)[1] if "/" in model and model.split("/", 1)[0] in _PROVIDERS else model
        if name in table:
            return table[name]
        for key in by_length:
            if name.startswith(key):
                return table[key]
        return None

    def is_priced(self, model: str) -> bool:
        return self.lookup(model) is not None

    def cost_usd(self, model: str, usage: Usage) -> float:
        """USD for one call; 0.0 for an unpriced model (check :meth:`is_priced` to warn)."""
        price = self.lookup(model)
        return 0.0 if price is None else price.cost(usage)


_PROVIDERS = frozenset({"openai", "anthropic", "ollama"})

#: the host of each provider's own endpoint: the only one the shipped list prices apply to
OFFICIAL_HOSTS = {"openai": "api.openai.com", "anthropic": "api.anthropic.com"}


def official_endpoint(provider: str, base_url: str | None) -> bool:
    """Whether ``base_url`` is ``provider``'s own API (no base URL means the SDK's default: the provider's own).

    The host is compared exactly, so ``https://api.openai.com.example.net`` is not OpenAI.
    """
    if not base_url:
        return provider in OFFICIAL_HOSTS
    try:
        host = urlsplit(base_url if "://" in base_url else "https://" + base_url).hostname
    except ValueError:
        return False
    return host is not None and host.lower() == OFFICIAL_HOSTS.get(provider)


def endpoint_price(pricing: Pricing, provider: str, model: str, base_url: str | None) -> Price | None:
    """The price of ``model`` as served at ``base_url``: the shipped list prices (and the user's file) on the
    provider's own endpoint; anywhere else only an entry of the user's own price file, else None (unpriced)."""
    return pricing.lookup(model, defaults=official_endpoint(provider, base_url))


def unpriced_reason(pricing: Pricing, provider: str, model: str, base_url: str | None) -> str | None:
    """Why ``model`` at ``base_url`` has no price (one clause for reports), or None when it has one."""
    if endpoint_price(pricing, provider, model, base_url) is not None:
        return None
    if official_endpoint(provider, base_url):
        return f"no price known for {model}; add it to a price table: --set llm.pricing=FILE.yaml"
    return (f"{base_url} is not {provider}'s own endpoint, so the built-in list prices do not apply; "
            "give its prices with --set llm.pricing=FILE.yaml")


def env_base_url(provider: str, env: Mapping[str, str] | None = None) -> str | None:
    """``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` for that provider (the variables the SDKs read), or None."""
    name = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}.get(provider)
    env = os.environ if env is None else env
    value = (env.get(name) or "").strip() if name else ""
    return value or None


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
