"""What the OpenAI and Anthropic providers share: retries, timing, cost, key hygiene, the base URL.

A provider implements one method, :meth:`NetworkSynthesizer._attempt`, which
performs a single HTTP call and either returns a parsed :class:`LLMResponse`
(without attempts, latency or cost) or raises a :class:`Failure`. Everything
around it (the retry loop, the per-call deadline, pricing, and making sure no
API key can appear in an error message) lives here once.

The base URL is resolved here too (:func:`resolve_base_url`): ``--base-url``,
else ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL``, the variables the SDKs
read themselves. Resolving it ourselves, rather than leaving it to the SDK,
is what lets a run record where it sent its prompts and price them only when
that is the provider's own endpoint (see :mod:`synthloop.llm.pricing`).
"""

from __future__ import annotations

import asyncio
import os
import time
from abc import abstractmethod
from typing import Any
from urllib.parse import urlsplit

from synthloop.core.types import Artifact
from synthloop.llm.base import LLMError, LLMRequest, LLMResponse, Synthesizer
from synthloop.llm.pricing import Pricing, default_pricing, endpoint_price, env_base_url, unpriced_reason
from synthloop.llm.retry import Failure, RetryPolicy, call_with_retries, connection_cause, status_failure


class ModelConfigError(ValueError):
    """A synthesizer that cannot be built as asked (unknown model, no API key, no recording); one line for the user."""


class NetworkSynthesizer(Synthesizer):
    """Base for providers that call a model over HTTP through an official SDK."""

    kind = "llm"
    provider = "abstract"

    def __init__(self, model: str, *, policy: RetryPolicy | None = None, pricing: Pricing | None = None,
                 free: bool = False) -> None:
        self.model = model
        self.name = f"{self.provider}/{model}"
        self.policy = policy or RetryPolicy()
        self.pricing = pricing or default_pricing()
        #: local servers (Ollama) cost nothing and count as priced
        self.free = free
        #: where requests go (None: the SDK's default, the provider's own API); set by the subclass
        self.base_url: str | None = None
        #: where ``base_url`` came from: "argument" (--base-url, llm.base_url) or the environment variable's name
        self.base_url_from: str | None = None
        self._secrets: list[str] = []
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    # -- for subclasses
    @abstractmethod
    async def _attempt(self, request: LLMRequest) -> LLMResponse:
        """One HTTP call; raise :class:`Failure` on any fault."""

    @abstractmethod
    def _make_client(self) -> Any:
        """A new SDK client (with the SDK's own retries off)."""

    @property
    def client(self) -> Any:
        """The SDK client for the running event loop.

        An async HTTP connection pool belongs to the loop it was created on; a
        synthesizer reused under a new ``asyncio.run`` (a resumed run, the
        held-out gate, tests) gets a fresh client instead of "Event loop is closed".
        """
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = self._make_client()
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            await client.close()
        self._client_loop = None

    def _remember_secret(self, secret: str | None) -> None:
        if secret and len(secret) >= 8:
            self._secrets.append(secret)

    def _scrub(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    # -- the Synthesizer interface
    async def complete(self, request: LLMRequest, parent: Artifact | None = None) -> LLMResponse:
        t0 = time.perf_counter()
        try:
            resp, attempts = await call_with_retries(lambda: self._attempt(request), self.policy,
                                                     timeout_s=request.timeout_s)
        except LLMError as e:
            raise LLMError(e.kind, self._scrub(e.message), attempts=e.attempts) from None
        resp.attempts = attempts
        resp.latency_s = time.perf_counter() - t0
        resp.request_hash = request.hash()
        resp.cost_usd = 0.0 if self.free else self._cost(resp)
        return resp

    def _price(self, model: str) -> Any:
        return endpoint_price(self.pricing, self.provider, model, self.base_url)

    def _cost(self, resp: LLMResponse) -> float:
        price = self._price(resp.model) or self._price(self.model)
        return 0.0 if price is None else price.cost(resp.usage)

    @property
    def priced(self) -> bool:
        """False when the model has no price at this endpoint: reports say "unpriced" (its calls count as $0
        against a budget, and the engine warns). A base URL other than the provider's own is priced only from
        the user's own price file."""
        return self.free or self._price(self.model) is not None

    def describe(self) -> dict[str, Any]:
        reason = None if self.priced else unpriced_reason(self.pricing, self.provider, self.model, self.base_url)
        return {"name": self.name, "kind": self.kind, "provider": self.provider, "model": self.model,
                "base_url": self.base_url, "base_url_from": self.base_url_from, "priced": self.priced,
                "unpriced_reason": reason, "pricing_as_of": None if self.free else self.pricing.as_of,
                "price_file": self.pricing.override_path, "max_attempts": self.policy.max_attempts}


def resolve_base_url(provider: str, base_url: str | None, env: Any = None) -> tuple[str | None, str | None]:
    """``(base_url, where it came from)``: the argument if given, else the provider's ``*_BASE_URL`` variable."""
    if base_url:
        return base_url, "argument"
    from_env = env_base_url(provider, env)
    if from_env:
        return from_env, {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}[provider]
    return None, None


def sdk_failure(exc: BaseException, sdk: Any) -> Failure | None:
    """Translate an ``openai`` / ``anthropic`` SDK exception (same hierarchy) into a Failure, else None."""
    if isinstance(exc, sdk.APITimeoutError):
        return Failure("timeout", "the request timed out")
    if isinstance(exc, sdk.APIConnectionError):
        reason = connection_cause(exc)  # e.g. "connection refused", from the errno at the bottom of the chain
        if reason:
            return Failure("connection", reason)
        cause = exc.__cause__ or exc.__context__
        detail = f" ({type(cause).__name__}: {cause})" if cause else ""
        return Failure("connection", f"connection failed or dropped{detail}")
    if isinstance(exc, sdk.APIStatusError):
        return status_failure(exc.status_code, _short(getattr(exc, "message", str(exc))), exc.response.headers)
    if isinstance(exc, getattr(sdk, "APIResponseValidationError", ())):
        return Failure("malformed", f"the server's answer did not have the expected shape: {_short(str(exc))}")
    if isinstance(exc, ValueError):  # e.g. json.JSONDecodeError from an invalid body
        return Failure("malformed", f"the server's answer is not valid JSON: {_short(str(exc))}")
    base = getattr(sdk, "OpenAIError", None) or getattr(sdk, "AnthropicError", None)
    if base is not None and isinstance(exc, base):  # any other SDK-level refusal: not worth retrying
        return Failure("bad_request", f"{type(exc).__name__}: {_short(str(exc))}")
    return None


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def ollama_base_url(env: Any = None) -> str:
    """Root URL of the local Ollama: ``$OLLAMA_HOST`` (``host``, ``host:port`` or a URL), else 127.0.0.1:11434."""
    env = os.environ if env is None else env
    raw = (env.get("OLLAMA_HOST") or "").strip()
    if not raw:
        return "http://127.0.0.1:11434"
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    host = parts.hostname or "127.0.0.1"
    if host == "0.0.0.0":  # a bind-all address: reach it through loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port or 11434
    except ValueError:
        port = 11434
    return f"{parts.scheme}://{host}:{port}"
