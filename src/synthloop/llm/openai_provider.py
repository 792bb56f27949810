"""``openai/<model>`` (and ``ollama/<model>``) through the official ``openai`` SDK.

Chat Completions is used rather than the Responses API because every
OpenAI-compatible server (vLLM, Ollama, llama.cpp, OpenRouter, Gemini's
compatible endpoint) speaks it. For the same reason the token limit goes out
as ``max_tokens``; only OpenAI's own reasoning models, which reject it, get
``max_completion_tokens`` (and a server that says so in a 400 gets it on the
next call). Reasoning text that such servers attach to the message
(``reasoning_content`` in vLLM/DeepSeek, ``reasoning`` in Ollama/OpenRouter)
is kept apart from the answer.
"""

from __future__ import annotations

import os
import re
from typing import Any

import openai

from synthloop.llm.base import LLMRequest, LLMResponse, Usage
from synthloop.llm.pricing import Pricing, official_endpoint
from synthloop.llm.providers import (
    ModelConfigError,
    NetworkSynthesizer,
    ollama_base_url,
    resolve_base_url,
    sdk_failure,
)
from synthloop.llm.retry import Failure, RetryPolicy

_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")


def _get(obj: Any, name: str) -> Any:
    """Attribute or extra field of an SDK model (servers add non-standard fields such as reasoning_content)."""
    value = getattr(obj, name, None)
    if value is None:
        extra = getattr(obj, "model_extra", None) or {}
        value = extra.get(name)
    return value


class OpenAISynthesizer(NetworkSynthesizer):
    """Chat Completions against OpenAI or any OpenAI-compatible server."""

    provider = "openai"

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 policy: RetryPolicy | None = None, pricing: Pricing | None = None, provider: str = "openai",
                 free: bool = False) -> None:
        self.provider = provider
        super().__init__(model, policy=policy, pricing=pricing, free=free)
        # OPENAI_BASE_URL is honoured as the SDK would, but resolved here so the run records and prices it
        if provider == "openai":
            self.base_url, self.base_url_from = resolve_base_url("openai", base_url)
        else:  # ollama: its own URL (OLLAMA_HOST), never OPENAI_BASE_URL
            self.base_url, self.base_url_from = base_url, ("argument" if base_url else None)
        official = official_endpoint("openai", self.base_url)
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if official:
                raise ModelConfigError(f"{self.name} needs OPENAI_API_KEY (or --base-url or OPENAI_BASE_URL for "
                                       "a local OpenAI-compatible server)")
            key = "not-needed"  # local servers ignore it, but the SDK insists on one
        self._remember_secret(key)
        self._api_key = key
        self._use_completion_tokens = official and bool(_REASONING_MODEL.match(model))

    def _make_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, max_retries=0)

    def _kwargs(self, request: LLMRequest) -> dict[str, Any]:
        kw: dict[str, Any] = {"model": self.model, "messages": request.messages, "timeout": request.timeout_s}
        kw["max_completion_tokens" if self._use_completion_tokens else "max_tokens"] = request.max_tokens
        if request.temperature is not None:
            kw["temperature"] = request.temperature
        if request.seed is not None:
            kw["seed"] = request.seed
        if request.reasoning_effort:
            kw["reasoning_effort"] = request.reasoning_effort
        return kw

    async def _attempt(self, request: LLMRequest) -> LLMResponse:
        try:
            resp = await self.client.chat.completions.create(**self._kwargs(request))
        except openai.BadRequestError as e:
            if not self._use_completion_tokens and "max_completion_tokens" in str(e.message):
                self._use_completion_tokens = True
                raise Failure("server", "server wants max_completion_tokens instead of max_tokens; "
                                        "retrying with it") from None
            raise self._failure(e) from None
        except Exception as e:  # noqa: BLE001 - every SDK fault is classified below
            raise self._failure(e) from None
        return self._parse(resp, request)

    def _failure(self, e: Exception) -> Failure:
        f = sdk_failure(e, openai)
        if f is None:
            raise e
        return f

    def _parse(self, resp: Any, request: LLMRequest) -> LLMResponse:
        if isinstance(resp, (str, bytes)) or not hasattr(resp, "choices"):
            raise Failure("malformed", f"the server's answer is not a chat completion: {str(resp)[:200]!r}")
        choices = resp.choices or []
        if not choices:
            raise Failure("malformed", "the server's answer has no choices")
        choice = choices[0]
        msg = choice.message
        text = (getattr(msg, "content", None) or "") if msg is not None else ""
        reasoning = (_get(msg, "reasoning_content") or _get(msg, "reasoning") or "") if msg is not None else ""
        finish = getattr(choice, "finish_reason", None)
        if not text.strip():
            if finish == "length":
                raise Failure("bad_request", f"empty answer: the model used all max_tokens={request.max_tokens} "
                                             "before writing any text; raise max_tokens or lower reasoning effort")
            raise Failure("malformed", "the server's answer has no text")
        return LLMResponse(text=text, model=getattr(resp, "model", None) or self.model, provider=self.provider,
                           kind="llm", reasoning=str(reasoning), usage=self._usage(resp),
                           finish_reason=finish)

    @staticmethod
    def _usage(resp: Any) -> Usage:
        u = getattr(resp, "usage", None)
        if u is None:
            return Usage()
        details = getattr(u, "completion_tokens_details", None)
        prompt_details = getattr(u, "prompt_tokens_details", None)
        return Usage(input_tokens=int(getattr(u, "prompt_tokens", 0) or 0),
                     output_tokens=int(getattr(u, "completion_tokens", 0) or 0),
                     reasoning_tokens=int(getattr(details, "reasoning_tokens", 0) or 0) if details else 0,
                     cached_input_tokens=int(getattr(prompt_details, "cached_tokens", 0) or 0)
                     if prompt_details else 0)


def make_ollama(model: str, *, base_url: str | None = None, policy: RetryPolicy | None = None,
                pricing: Pricing | None = None) -> OpenAISynthesizer:
    """``ollama/<model>``: the OpenAI provider pointed at Ollama's compatible endpoint; free and keyless."""
    url = base_url or ollama_base_url() + "/v1"
    return OpenAISynthesizer(model, base_url=url, api_key="ollama", policy=policy, pricing=pricing,
                             provider="ollama", free=True)
