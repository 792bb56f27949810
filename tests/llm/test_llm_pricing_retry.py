"""Price lookup and cost, and the retry policy's pieces (Retry-After parsing, backoff bounds)."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from pathlib import Path

import pytest

from synthloop.llm.base import LLMError, Usage
from synthloop.llm.pricing import Price, Pricing, PricingError, cost_usd, default_pricing
from synthloop.llm.retry import Failure, RetryPolicy, call_with_retries, parse_retry_after


def test_lookup_exact_prefix_and_provider_prefix() -> None:
    p = Pricing()
    assert p.lookup("gpt-4.1-mini") == p.table["gpt-4.1-mini"]
    assert p.lookup("gpt-4.1-mini-2025-04-14") == p.table["gpt-4.1-mini"]  # longest prefix, not gpt-4.1
    assert p.lookup("openai/gpt-4o-mini") == p.table["gpt-4o-mini"]
    assert p.lookup("claude-opus-4-5-20251101") == p.table["claude-opus-4-5"]
    assert p.lookup("claude-sonnet-4-6") is not None
    assert p.lookup("totally-unknown") is None and not p.is_priced("totally-unknown")
    assert p.as_of


def test_cost_formula_with_cache() -> None:
    p = Pricing()
    u = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_input_tokens=500_000, reasoning_tokens=10)
    assert p.cost_usd("gpt-4.1-mini", u) == pytest.approx(0.5 * 0.40 + 0.5 * 0.10 + 1.60)
    assert p.cost_usd("unknown-model", u) == 0.0
    assert cost_usd("gpt-4.1-mini", Usage()) == 0.0


def test_override_file_merges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("models:\n  gpt-4.1-mini: {input: 1, output: 2}\n  mine: {input: 3, output: 4, cached_input: 1}\n")
    p = Pricing(f)
    assert p.lookup("gpt-4.1-mini").input == 1 and p.lookup("mine").cached_input == 1
    assert p.lookup("gpt-4o") is not None  # defaults kept
    monkeypatch.setenv("SYNTHLOOP_PRICING", str(f))
    assert Pricing.from_env().lookup("mine") is not None
    assert default_pricing().lookup("mine") is not None


@pytest.mark.parametrize("text", ["models: [1, 2]", "models:\n  x: {input: 1}\n", "models:\n  x: {input: a, output: 1}",
                                  "models: {x: [unclosed"])
def test_bad_override_file(tmp_path: Path, text: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(PricingError):
        Pricing(f)
    with pytest.raises(PricingError):
        Pricing(tmp_path / "missing.yaml")


def test_parse_retry_after() -> None:
    assert parse_retry_after("0.2") == pytest.approx(0.2)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= parse_retry_after(date, now=now) <= 31
    assert parse_retry_after(email.utils.formatdate(now - 100, usegmt=True), now=now) == 0.0


def test_backoff_full_jitter_bounds() -> None:
    pol = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0)
    rng = random.Random(0)
    for attempt in range(1, 8):
        cap = min(5.0, 2 ** (attempt - 1))
        assert all(0 <= pol.backoff(attempt, rng) <= cap for _ in range(50))


def test_retry_after_is_capped_and_honoured() -> None:
    slept: list[float] = []

    async def fake_sleep(d: float) -> None:
        slept.append(d)

    calls = iter([Failure("rate_limit", "429", retry_after=3600), Failure("server", "500", retry_after=2.0)])

    async def attempt() -> str:
        f = next(calls, None)
        if f:
            raise f
        return "ok"

    pol = RetryPolicy(base_delay_s=0.001, max_retry_after_s=10.0)
    out, n = asyncio.run(call_with_retries(attempt, pol, sleep=fake_sleep))
    assert (out, n) == ("ok", 3) and slept[0] == 10.0 and slept[1] >= 2.0


def test_non_retryable_failure_stops() -> None:
    async def attempt() -> str:
        raise Failure("auth", "HTTP 401: no")

    with pytest.raises(LLMError) as ei:
        asyncio.run(call_with_retries(attempt, RetryPolicy(base_delay_s=0)))
    assert ei.value.kind == "auth" and ei.value.attempts == 1


@pytest.mark.parametrize("deadline", ["asyncio.timeout", "asyncio.wait_for"])
def test_each_attempt_has_a_hard_deadline(monkeypatch, deadline) -> None:
    """Both ways of bounding an attempt (the context manager from Python 3.11 on, wait_for before)."""
    from synthloop.llm import retry

    if deadline == "asyncio.wait_for":
        monkeypatch.setattr(retry, "_timeout", None)
    elif retry._timeout is None:
        pytest.skip("asyncio.timeout needs Python >= 3.11")
    started: list[float] = []
    cancelled: list[bool] = []

    async def attempt() -> str:
        started.append(time.monotonic())
        try:
            await asyncio.sleep(5 if len(started) < 3 else 0)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "third time"

    async def go() -> tuple[str, int]:
        return await call_with_retries(attempt, RetryPolicy(max_attempts=3, base_delay_s=0.001), timeout_s=0.1)

    t0 = time.monotonic()
    assert asyncio.run(go()) == ("third time", 3)
    assert cancelled == [True, True] and time.monotonic() - t0 < 2.0

    async def hangs() -> str:
        await asyncio.sleep(5)
        return "never"

    with pytest.raises(LLMError) as ei:
        asyncio.run(call_with_retries(hangs, RetryPolicy(max_attempts=1), timeout_s=0.05))
    assert ei.value.kind == "timeout" and "0.05 s" in ei.value.message


def test_the_users_own_entries_are_kept_apart_from_the_list_prices(tmp_path: Path) -> None:
    """Off the provider's endpoint only the user's entries count (lookup(defaults=False)), prefixes included."""
    f = tmp_path / "p.yaml"
    f.write_text("models:\n  qwen2.5: {input: 0.1, output: 0.2}\n")
    p = Pricing(f)
    assert p.lookup("qwen2.5-coder-7b", defaults=False) == p.lookup("qwen2.5-coder-7b") == Price(0.1, 0.2)
    assert p.lookup("gpt-4.1-mini") is not None and p.lookup("gpt-4.1-mini", defaults=False) is None
    assert Pricing().lookup("gpt-4.1-mini", defaults=False) is None
