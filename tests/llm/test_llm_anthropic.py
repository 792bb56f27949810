"""Anthropic provider through the real ``anthropic`` SDK against the fake Messages server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest

from synthloop.llm.anthropic_provider import AnthropicSynthesizer
from synthloop.llm.base import LLMError, LLMRequest
from synthloop.llm.pricing import Pricing
from synthloop.llm.retry import RetryPolicy
from synthloop.testing import FakeAnthropicServer, FakeReply

FAST = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05)
KEY = "sk-ant-" + "test-secret-0987654321"  # assembled so no key-shaped literal is committed


def req(**kw) -> LLMRequest:
    base = {"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Write code."}],
            "timeout_s": 5.0}
    base.update(kw)
    return LLMRequest(**base)


def call(srv: FakeAnthropicServer, r: LLMRequest, model: str = "claude-sonnet-4-6", policy: RetryPolicy = FAST,
         pricing: Pricing | None = None):
    s = AnthropicSynthesizer(model, base_url=srv.base_url, api_key=KEY, policy=policy, pricing=pricing)

    async def go():
        try:
            return await s.complete(r)
        finally:
            await s.aclose()
    return asyncio.run(go())


def test_system_mapped_and_temperature_sent() -> None:
    with FakeAnthropicServer(["```python\ny = 2\n```"]) as srv:
        r = call(srv, req(temperature=0.7, max_tokens=1234))
        body = srv.bodies[0]
        headers = srv.requests[0].headers
        assert KEY in (headers.get("x-api-key") or headers.get("authorization", ""))
    assert r.text == "```python\ny = 2\n```" and r.provider == "anthropic" and r.reasoning == ""
    assert body["system"] == "Be terse."
    assert body["messages"] == [{"role": "user", "content": "Write code."}]
    assert body["temperature"] == 0.7 and body["max_tokens"] == 1234 and "thinking" not in body


def test_thinking_text_separated_from_answer() -> None:
    reply = FakeReply.answer("final answer", reasoning="step 1, step 2",
                             usage={"input_tokens": 2000, "output_tokens": 1000, "cached_input_tokens": 1000})
    with FakeAnthropicServer([reply]) as srv:
        # the fake server is not Anthropic's own endpoint, where only the user's own prices apply: the list price
        listed = Pricing(extra={"claude-sonnet-4-6": Pricing().table["claude-sonnet-4-6"]})
        r = call(srv, req(temperature=0.7, thinking_budget=2048, max_tokens=1000), pricing=listed)
        body = srv.bodies[0]
    assert r.text == "final answer" and r.reasoning == "step 1, step 2"
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "temperature" not in body  # the API rejects temperature with thinking
    assert body["max_tokens"] > 2048  # room for the answer beyond the thinking budget
    assert r.usage.input_tokens == 2000 and r.usage.cached_input_tokens == 1000 and r.usage.output_tokens == 1000
    assert r.cost_usd == pytest.approx((1000 * 3.0 + 1000 * 0.30 + 1000 * 15.0) / 1e6)


def test_429_retry_after_then_success() -> None:
    with FakeAnthropicServer([FakeReply.error(429, retry_after=0.2), "ok"]) as srv:
        r = call(srv, req())
        t = [x.t for x in srv.requests]
    assert r.attempts == 2 and t[1] - t[0] >= 0.19


def test_overloaded_529_then_success() -> None:
    with FakeAnthropicServer([FakeReply.error(529), FakeReply.error(500), "ok"]) as srv:
        r = call(srv, req())
    assert r.text == "ok" and r.attempts == 3


def test_repeated_500_is_a_server_error() -> None:
    with FakeAnthropicServer(lambda body: FakeReply.error(500)) as srv:
        with pytest.raises(LLMError) as ei:
            call(srv, req())
        assert len(srv.bodies) == FAST.max_attempts
    assert ei.value.kind == "server" and ei.value.attempts == FAST.max_attempts


def test_timeout() -> None:
    t0 = time.monotonic()
    with FakeAnthropicServer(lambda body: FakeReply.slow(1.5)) as srv:
        with pytest.raises(LLMError) as ei:
            call(srv, req(timeout_s=0.25), policy=RetryPolicy(max_attempts=2, base_delay_s=0.01))
    assert ei.value.kind == "timeout" and time.monotonic() - t0 < 2.0


def test_dropped_connection_then_success() -> None:
    with FakeAnthropicServer([FakeReply.dropped(), "ok"]) as srv:
        r = call(srv, req())
    assert r.attempts == 2


@pytest.mark.parametrize("bad", [
    FakeReply.invalid_json(),
    FakeReply.raw({"id": "m", "type": "message", "role": "assistant", "model": "x", "content": [],
                   "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 0}}),
    FakeReply.answer("", reasoning="only thinking, no text"),
])
def test_malformed(bad: FakeReply) -> None:
    with FakeAnthropicServer(lambda body: bad) as srv:
        with pytest.raises(LLMError) as ei:
            call(srv, req())
        assert len(srv.bodies) == FAST.max_malformed_attempts
    assert ei.value.kind == "malformed"


@pytest.mark.parametrize(("status", "kind"), [(400, "bad_request"), (401, "auth"), (403, "auth"),
                                              (404, "bad_request")])
def test_non_retryable(status: int, kind: str) -> None:
    with FakeAnthropicServer(lambda body: FakeReply.error(status)) as srv:
        with pytest.raises(LLMError) as ei:
            call(srv, req())
        assert len(srv.bodies) == 1
    assert ei.value.kind == kind and KEY not in str(ei.value)
