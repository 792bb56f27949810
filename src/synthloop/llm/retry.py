"""One retry policy for every network provider.

The SDKs' own retries are disabled (``max_retries=0``) so that this module is
the only place that decides whether to try again, how long to wait, and how
many attempts a call took (``LLMResponse.attempts``). Providers translate
their SDK's exceptions into a :class:`Failure` and hand a zero-argument
coroutine factory to :func:`call_with_retries`.

Policy: exponential backoff with *full jitter* (a uniform wait in
``[0, base * 2**(attempt-1)]``, capped), except that a server's
``Retry-After`` is honoured as a lower bound (capped so that a hostile or
confused server cannot park a run for an hour). Timeouts, dropped
connections, 429 and 5xx are retried; other 4xx are raised at once; a
malformed answer is retried only a couple of times because it usually means
a broken server rather than bad luck.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from synthloop.llm.base import LLMError

T = TypeVar("T")
_timeout = getattr(asyncio, "timeout", None)  # Python >= 3.11

RETRYABLE_KINDS = frozenset({"timeout", "rate_limit", "server", "connection", "malformed"})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``base_delay_s`` is small in tests, about a second in real runs."""

    max_attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    #: a Retry-After larger than this is cut down to it
    max_retry_after_s: float = 120.0
    #: at most this many attempts may end in a malformed answer before we give up
    max_malformed_attempts: int = 3

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full-jitter wait after failed attempt number ``attempt`` (1-based)."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** max(0, attempt - 1)))
        return (rng or random).uniform(0.0, cap)


class Failure(Exception):
    """A classified failure of one attempt; providers raise it from their attempt function."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/garbled."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        secs = float(value)
    except ValueError:
        try:
            dt = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if dt is None:
            return None
        secs = dt.timestamp() - (time.time() if now is None else now)
    if secs != secs:  # NaN
        return None
    return max(0.0, secs)


def retry_after_from_headers(headers: object) -> float | None:
    """Read ``retry-after-ms`` (OpenAI) or ``retry-after`` from a headers mapping, if any."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    ms = get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    return parse_retry_after(get("retry-after"))


def status_failure(status: int, message: str, headers: object = None) -> Failure:
    """Map an HTTP error status to a Failure kind (shared by the OpenAI and Anthropic providers)."""
    retry_after = retry_after_from_headers(headers) if headers is not None else None
    if status == 429:
        return Failure("rate_limit", f"HTTP 429: {message}", retry_after)
    if status == 408:
        return Failure("timeout", f"HTTP 408: {message}", retry_after)
    if status == 409 or status >= 500:
        return Failure("server", f"HTTP {status}: {message}", retry_after)
    if status in (401, 403):
        return Failure("auth", f"HTTP {status}: {message}")
    return Failure("bad_request", f"HTTP {status}: {message}")


def connection_cause(exc: BaseException) -> str | None:
    """The operating system's reason a connection failed ("connection refused"), from an SDK error's chain.

    SDKs wrap the socket error three or four times ("Connection error." / "All connection attempts failed");
    the errno at the bottom of the chain is what a user can act on. None when the chain holds no OS error.
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno is not None:
            text = os.strerror(e.errno) if e.errno > 0 else (e.strerror or "")  # gaierror: negative errno
            if text and not text.startswith("Unknown error"):
                return text[:1].lower() + text[1:]
        e = e.__cause__ or e.__context__
    return None


def unusable_endpoint(kind: str, message: str, where: str) -> str | None:
    """One line saying why a synthesizer endpoint cannot be used at all, or None when the failure may pass.

    Used for the *first* call of a run: an endpoint that cannot be reached or that rejects the key will not
    get better by asking again for every candidate, so the run stops with this as its cause instead of
    recording one failed call per generation. Server errors, rate limits and timeouts are not final.
    """
    if kind == "connection":
        return f"cannot reach {where}: {message}"
    if kind == "auth":
        m = re.search(r"\bHTTP (\d{3})\b", message)
        return f"the server at {where} rejected the API key ({f'HTTP {m.group(1)}' if m else message})"
    return None


async def call_with_retries(
    attempt_fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    timeout_s: float | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> tuple[T, int]:
    """Run ``attempt_fn`` until it succeeds; return ``(result, attempts)`` or raise :class:`LLMError`.

    ``attempt_fn`` raises :class:`Failure` for classified faults. Each attempt is
    bounded by ``timeout_s`` (a hard deadline on top of the SDK's own socket
    timeouts, which only bound the gap between bytes).
    """
    attempts = 0
    malformed = 0
    last: Failure | None = None
    max_attempts = max(1, policy.max_attempts)
    while attempts < max_attempts:
        attempts += 1
        try:
            if timeout_s is None:
                result = await attempt_fn()
            elif _timeout is not None:  # Python >= 3.11: no extra task, so no extra loop iterations per call
                async with _timeout(timeout_s):
                    result = await attempt_fn()
            else:
                result = await asyncio.wait_for(attempt_fn(), timeout=timeout_s)
            return result, attempts
        except Failure as f:
            last = f
        except asyncio.TimeoutError:
            last = Failure("timeout", f"no complete answer within {timeout_s:g} s")
        if not last.retryable:
            break
        if last.kind == "malformed":
            malformed += 1
            if malformed >= policy.max_malformed_attempts:
                break
        if attempts >= max_attempts:
            break
        delay = policy.backoff(attempts, rng)
        if last.retry_after is not None:
            delay = max(delay, min(last.retry_after, policy.max_retry_after_s))
        await sleep(delay)
    assert last is not None
    suffix = f" (after {attempts} attempt{'s' if attempts != 1 else ''})" if last.retryable else ""
    raise LLMError(last.kind, last.message + suffix, attempts=attempts)
