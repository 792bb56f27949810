"""``anthropic/<model>`` through the official ``anthropic`` SDK (Messages API).

System messages go to ``system=``. With a thinking budget, extended thinking
is enabled and ``temperature`` is left out (the API rejects it with
thinking); the thinking blocks' text is stored in ``LLMResponse.reasoning``
and the answer is taken from text blocks only, so extraction never sees the
model's scratch work.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import anthropic

from synthloop.llm.base import LLMRequest, LLMResponse, Usage
from synthloop.llm.pricing import Pricing, official_endpoint
from synthloop.llm.providers import ModelConfigError, NetworkSynthesizer, resolve_base_url, sdk_failure
from synthloop.llm.retry import Failure, RetryPolicy


def _create_accepts(name: str) -> bool:
    """Whether this SDK version's ``messages.create`` takes ``name`` as a keyword (else send it in extra_body)."""
    try:
        from anthropic.resources.messages import AsyncMessages
        return name in inspect.signature(AsyncMessages.create).parameters
    except (ImportError, AttributeError, TypeError, ValueError):  # pragma: no cover - layout changed
        return True


_TEMPERATURE_KW = _create_accepts("temperature")


class AnthropicSynthesizer(NetworkSynthesizer):
    """Claude models through the Messages API."""

    provider = "anthropic"

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 policy: RetryPolicy | None = None, pricing: Pricing | None = None) -> None:
        super().__init__(model, policy=policy, pricing=pricing)
        # ANTHROPIC_BASE_URL is honoured as the SDK would, but resolved here so the run records and prices it
        self.base_url, self.base_url_from = resolve_base_url("anthropic", base_url)
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            if official_endpoint("anthropic", self.base_url):
                raise ModelConfigError(f"{self.name} needs ANTHROPIC_API_KEY (or --base-url or ANTHROPIC_BASE_URL "
                                       "for a compatible server)")
            key = "not-needed"
        self._remember_secret(key)
        self._api_key = key

    def _make_client(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(api_key=self._api_key, base_url=self.base_url, max_retries=0)

    def _kwargs(self, request: LLMRequest) -> dict[str, Any]:
        system = "\n\n".join(m["content"] for m in request.messages if m.get("role") == "system")
        messages = [{"role": m["role"], "content": m["content"]} for m in request.messages
                    if m.get("role") != "system"]
        max_tokens = request.max_tokens
        kw: dict[str, Any] = {"model": self.model, "messages": messages, "timeout": request.timeout_s}
        if system:
            kw["system"] = system
        if request.thinking_budget:
            budget = int(request.thinking_budget)
            kw["thinking"] = {"type": "enabled", "budget_tokens": budget}
            if max_tokens <= budget:  # thinking counts inside max_tokens; leave room for the answer
                max_tokens = budget + max_tokens
        elif request.temperature is not None:
            if _TEMPERATURE_KW:
                kw["temperature"] = request.temperature
            else:
                kw["extra_body"] = {"temperature": request.temperature}
        kw["max_tokens"] = max_tokens
        return kw

    async def _attempt(self, request: LLMRequest) -> LLMResponse:
        try:
            resp = await self.client.messages.create(**self._kwargs(request))
        except Exception as e:  # noqa: BLE001 - every SDK fault is classified below
            f = sdk_failure(e, anthropic)
            if f is None:
                raise
            raise f from None
        return self._parse(resp, request)

    def _parse(self, resp: Any, request: LLMRequest) -> LLMResponse:
        blocks = getattr(resp, "content", None)
        if isinstance(resp, (str, bytes)) or not isinstance(blocks, list):
            raise Failure("malformed", "the server's answer is not a Messages response (no content list)")
        texts: list[str] = []
        thoughts: list[str] = []
        for b in blocks:
            btype = getattr(b, "type", None)
            if btype == "text":
                texts.append(getattr(b, "text", "") or "")
            elif btype == "thinking":
                thoughts.append(getattr(b, "thinking", "") or "")
            elif btype == "redacted_thinking":
                thoughts.append("[redacted thinking]")
        text = "".join(texts)
        stop = getattr(resp, "stop_reason", None)
        if not text.strip():
            if stop == "max_tokens":
                raise Failure("bad_request", f"empty answer: the model used all max_tokens={request.max_tokens} "
                                             "before writing any text; raise max_tokens or the thinking budget gap")
            raise Failure("malformed", "the server's answer has no text block")
        return LLMResponse(text=text, model=getattr(resp, "model", None) or self.model, provider=self.provider,
                           kind="llm", reasoning="\n\n".join(t for t in thoughts if t), usage=self._usage(resp),
                           finish_reason=stop)

    @staticmethod
    def _usage(resp: Any) -> Usage:
        u = getattr(resp, "usage", None)
        if u is None:
            return Usage()

        def n(name: str) -> int:
            return int(getattr(u, name, 0) or 0)

        cache_read = n("cache_read_input_tokens")
        # Anthropic reports cache reads and writes outside input_tokens; our Usage counts all input
        return Usage(input_tokens=n("input_tokens") + cache_read + n("cache_creation_input_tokens"),
                     output_tokens=n("output_tokens"), reasoning_tokens=0, cached_input_tokens=cache_read)
