"""Synthesizers: LLM providers, the replay server and the ``mutate`` baseline, plus extraction and pricing.

The SDK-backed providers are imported lazily (``openai`` and ``anthropic``
take a second or more to import), so ``import synthloop.llm`` stays cheap
for runs that use ``mutate`` or ``replay:``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthloop.llm.base import LLMError, LLMRequest, LLMResponse, Synthesizer, Usage
from synthloop.llm.extract import ExtractionError, extract_code
from synthloop.llm.factory import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_OPENAI_MODEL,
    UnknownModel,
    make_synthesizer,
    parse_model,
    resolve_model,
)
from synthloop.llm.mutate import MutateSynthesizer
from synthloop.llm.pricing import Price, Pricing, PricingError, cost_usd, default_pricing, is_priced
from synthloop.llm.providers import ModelConfigError, NetworkSynthesizer
from synthloop.llm.replay import ReplayError, ReplaySynthesizer
from synthloop.llm.retry import RetryPolicy

if TYPE_CHECKING:
    from synthloop.llm.anthropic_provider import AnthropicSynthesizer
    from synthloop.llm.openai_provider import OpenAISynthesizer

_LAZY = {
    "OpenAISynthesizer": "synthloop.llm.openai_provider",
    "AnthropicSynthesizer": "synthloop.llm.anthropic_provider",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'synthloop.llm' has no attribute {name!r}")


__all__ = [
    "AnthropicSynthesizer", "DEFAULT_ANTHROPIC_MODEL", "DEFAULT_OPENAI_MODEL", "ExtractionError", "LLMError",
    "LLMRequest", "LLMResponse", "ModelConfigError", "MutateSynthesizer", "NetworkSynthesizer",
    "OpenAISynthesizer", "Price", "Pricing", "PricingError", "ReplayError", "ReplaySynthesizer", "RetryPolicy",
    "Synthesizer", "UnknownModel", "Usage", "cost_usd", "default_pricing", "extract_code", "is_priced",
    "make_synthesizer", "parse_model", "resolve_model",
]
