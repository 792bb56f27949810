"""One interface for every synthesizer: LLM providers, the replay server, the offline baseline.

The engine builds an :class:`LLMRequest` (messages plus sampling settings),
hands it to a :class:`Synthesizer` together with the parent artifact, and gets
an :class:`LLMResponse` back. Providers retry transient faults themselves; a
fault that survives the retries is raised as :class:`LLMError`, which the
engine records and survives.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from synthloop.core.types import Artifact

SynthKind = Literal["llm", "baseline", "replay"]


@dataclass
class LLMRequest:
    messages: list[dict[str, str]]  # [{"role": "system"|"user"|"assistant", "content": ...}]
    temperature: float | None = None
    max_tokens: int = 8192
    seed: int | None = None
    reasoning_effort: str | None = None  # OpenAI reasoning models: low / medium / high
    thinking_budget: int | None = None  # Anthropic extended thinking budget (tokens)
    timeout_s: float = 600.0

    def hash(self) -> str:
        """Key for replay: the messages and sampling settings, not the model or timeout."""
        key = {
            "messages": self.messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "reasoning_effort": self.reasoning_effort,
            "thinking_budget": self.thinking_budget,
        }
        blob = json.dumps(key, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_input_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class LLMResponse:
    text: str
    model: str
    provider: str
    kind: SynthKind = "llm"
    reasoning: str = ""  # thinking text, stored separately from the answer
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    latency_s: float = 0.0
    attempts: int = 1
    finish_reason: str | None = None
    request_hash: str = ""


class LLMError(Exception):
    """A synthesizer call that failed after retries. ``kind`` is one of KINDS."""

    KINDS = ("timeout", "rate_limit", "server", "connection", "bad_request", "auth", "malformed", "replay_miss",
             "budget")

    def __init__(self, kind: str, message: str, attempts: int = 1) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.attempts = attempts


class Synthesizer(ABC):
    """Turns a request (and the parent artifact, for offline baselines) into a proposal."""

    #: the model string as the user gave it, e.g. ``openai/gpt-4.1-mini`` or ``mutate``
    name: str = "abstract"
    kind: SynthKind = "llm"

    @abstractmethod
    async def complete(self, request: LLMRequest, parent: Artifact | None = None) -> LLMResponse:
        ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        pass

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind}
