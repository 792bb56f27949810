"""OpenAI provider through the real ``openai`` SDK against the fake server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest

from synthloop.llm.base import LLMError, LLMRequest
from synthloop.llm.openai_provider import OpenAISynthesizer, make_ollama, ollama_base_url
from synthloop.llm.pricing import Pricing
from synthloop.llm.retry import RetryPolicy
from synthloop.testing import FakeOpenAIServer, FakeReply

FAST = RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.05)
KEY = "sk-test-secret-key-1234567890"


def req(**kw) -> LLMRequest:
    base = {"messages": [{"role": "system", "content": "You write code."}, {"role": "user", "content": "Go."}],
            "timeout_s": 5.0}
    base.update(kw)
    return LLMRequest(**base)


def synth(srv: FakeOpenAIServer, model: str = "gpt-4.1-mini", policy: RetryPolicy = FAST) -> OpenAISynthesizer:
    return OpenAISynthesizer(model, base_url=srv.base_url, api_key=KEY, policy=policy)


def call(s: OpenAISynthesizer, r: LLMRequest):
    async def go():
        try:
            return await s.complete(r)
        finally:
            await s.aclose()
    return asyncio.run(go())


def test_scripted_answer_settings_and_usage() -> None:
    reply = FakeReply.answer("```python\nx = 1\n```", reasoning="let me think",
                             usage={"input_tokens": 1000, "output_tokens": 500, "reasoning_tokens": 200,
                                    "cached_input_tokens": 400})
    # the fake server is not OpenAI's own endpoint, where only the user's own prices apply: give the list price
    listed = Pricing(extra={"gpt-4.1-mini": Pricing().table["gpt-4.1-mini"]})
    with FakeOpenAIServer([reply]) as srv:
        s = OpenAISynthesizer("gpt-4.1-mini", base_url=srv.base_url, api_key=KEY, policy=FAST, pricing=listed)
        r = call(s, req(temperature=0.3, max_tokens=777, seed=7, reasoning_effort="low"))
    assert r.text == "```python\nx = 1\n```"
    assert r.reasoning == "let me think"
    assert (r.provider, r.kind, r.attempts, r.model) == ("openai", "llm", 1, "gpt-4.1-mini")
    assert r.usage.input_tokens == 1000 and r.usage.output_tokens == 500
    assert r.usage.reasoning_tokens == 200 and r.usage.cached_input_tokens == 400
    expected = (600 * 0.40 + 400 * 0.10 + 500 * 1.60) / 1e6
    assert r.cost_usd == pytest.approx(expected)
    assert r.latency_s > 0 and r.request_hash == req(temperature=0.3, max_tokens=777, seed=7,
                                                     reasoning_effort="low").hash()
    body = srv.bodies[0]
    assert body["model"] == "gpt-4.1-mini"
    assert body["temperature"] == 0.3 and body["max_tokens"] == 777 and body["seed"] == 7
    assert body["reasoning_effort"] == "low"
    assert "max_completion_tokens" not in body
    assert body["messages"][0] == {"role": "system", "content": "You write code."}


def test_unset_settings_are_not_sent() -> None:
    with FakeOpenAIServer(["hi"]) as srv:
        call(synth(srv), req())
    body = srv.bodies[0]
    for key in ("temperature", "seed", "reasoning_effort"):
        assert key not in body


def test_429_with_retry_after_then_success() -> None:
    with FakeOpenAIServer([FakeReply.error(429, retry_after=0.2), "done"]) as srv:
        r = call(synth(srv), req())
        t = [x.t for x in srv.requests]
    assert r.text == "done" and r.attempts == 2
    assert t[1] - t[0] >= 0.19  # waited at least Retry-After, not the tiny backoff


def test_500_then_success() -> None:
    with FakeOpenAIServer([FakeReply.error(500), "ok"]) as srv:
        r = call(synth(srv), req())
    assert r.text == "ok" and r.attempts == 2


def test_repeated_500_gives_server_error_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.01)
    with FakeOpenAIServer(lambda body: FakeReply.error(503)) as srv:
        with pytest.raises(LLMError) as ei:
            call(synth(srv, policy=policy), req())
        assert len(srv.bodies) == 3
    assert ei.value.kind == "server" and ei.value.attempts == 3
    assert "503" in ei.value.message and "3 attempts" in ei.value.message


def test_slow_answer_times_out() -> None:
    policy = RetryPolicy(max_attempts=2, base_delay_s=0.01)
    t0 = time.monotonic()
    with FakeOpenAIServer(lambda body: FakeReply.slow(1.5, "late")) as srv:
        with pytest.raises(LLMError) as ei:
            call(synth(srv, policy=policy), req(timeout_s=0.3))
    assert ei.value.kind == "timeout" and ei.value.attempts == 2
    assert time.monotonic() - t0 < 2.0


def test_dropped_connection_then_success() -> None:
    with FakeOpenAIServer([FakeReply.dropped(), "back"]) as srv:
        r = call(synth(srv), req())
    assert r.text == "back" and r.attempts == 2


@pytest.mark.parametrize("bad", [FakeReply.raw({"id": "x", "object": "chat.completion", "choices": []}),
                                 FakeReply.invalid_json(),
                                 FakeReply.raw({"id": "x", "choices": [{"index": 0, "finish_reason": "stop",
                                                                         "message": {"role": "assistant",
                                                                                     "content": None}}]})])
def test_malformed_answers(bad: FakeReply) -> None:
    with FakeOpenAIServer(lambda body: bad) as srv:
        with pytest.raises(LLMError) as ei:
            call(synth(srv), req())
        assert len(srv.bodies) == 3  # retried twice, then given up (fewer than max_attempts=5)
    assert ei.value.kind == "malformed"


def test_malformed_once_then_success() -> None:
    with FakeOpenAIServer([FakeReply.invalid_json(), "fine"]) as srv:
        r = call(synth(srv), req())
    assert r.text == "fine" and r.attempts == 2


@pytest.mark.parametrize(("status", "kind"), [(400, "bad_request"), (401, "auth"), (403, "auth"),
                                              (404, "bad_request")])
def test_non_retryable_status_raises_at_once(status: int, kind: str) -> None:
    with FakeOpenAIServer(lambda body: FakeReply.error(status, message="nope")) as srv:
        with pytest.raises(LLMError) as ei:
            call(synth(srv), req())
        assert len(srv.bodies) == 1
    assert ei.value.kind == kind and ei.value.attempts == 1
    assert KEY not in str(ei.value)


def test_api_key_never_in_error_messages() -> None:
    with FakeOpenAIServer(lambda body: FakeReply.error(401, message=f"bad key {KEY}")) as srv:
        with pytest.raises(LLMError) as ei:
            call(synth(srv), req())
    assert KEY not in str(ei.value) and "***" in str(ei.value)


def test_empty_answer_at_length_limit_is_not_retried() -> None:
    with FakeOpenAIServer(lambda body: FakeReply.answer("", finish_reason="length")) as srv:
        with pytest.raises(LLMError) as ei:
            call(synth(srv), req(max_tokens=10))
        assert len(srv.bodies) == 1
    assert "max_tokens=10" in ei.value.message


def test_server_asking_for_max_completion_tokens_gets_it() -> None:
    def responder(body: dict) -> FakeReply | str:
        if "max_tokens" in body:
            return FakeReply.error(400, message="Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens'.")
        return "ok"

    with FakeOpenAIServer(responder) as srv:
        r = call(synth(srv, model="o4-mini"), req())
    assert r.text == "ok" and srv.bodies[-1]["max_completion_tokens"] == 8192


def test_unpriced_model_costs_zero_and_says_so() -> None:
    with FakeOpenAIServer(["x"]) as srv:
        s = synth(srv, model="my-local-finetune")
        assert s.priced is False and s.describe()["priced"] is False
        r = call(s, req())
    assert r.cost_usd == 0.0


def test_pricing_override_applies(tmp_path) -> None:
    p = tmp_path / "prices.yaml"
    p.write_text("models:\n  my-local-finetune: {input: 1.0, output: 2.0}\n")
    with FakeOpenAIServer([FakeReply.answer("x", usage={"input_tokens": 10**6, "output_tokens": 10**6})]) as srv:
        s = OpenAISynthesizer("my-local-finetune", base_url=srv.base_url, api_key=KEY, policy=FAST,
                              pricing=Pricing(p))
        r = call(s, req())
    assert r.cost_usd == pytest.approx(3.0)


def test_concurrent_calls_share_one_client() -> None:
    with FakeOpenAIServer(lambda body: FakeReply.answer(body["messages"][-1]["content"])) as srv:
        s = synth(srv)

        async def go():
            try:
                return await asyncio.gather(*(s.complete(req(messages=[{"role": "user", "content": str(i)}]))
                                              for i in range(8)))
            finally:
                await s.aclose()
        out = asyncio.run(go())
    assert [r.text for r in out] == [str(i) for i in range(8)]


def test_ollama_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer(["local"]) as srv:
        monkeypatch.setenv("OLLAMA_HOST", srv.host)
        s = make_ollama("llama3.2:1b", policy=FAST)
        assert s.name == "ollama/llama3.2:1b" and s.priced
        r = call(s, req())
        assert srv.requests[0].headers.get("authorization") == "Bearer ollama"
    assert r.text == "local" and r.provider == "ollama" and r.cost_usd == 0.0


@pytest.mark.parametrize(("value", "url"), [
    (None, "http://127.0.0.1:11434"), ("0.0.0.0", "http://127.0.0.1:11434"),
    ("127.0.0.1:9999", "http://127.0.0.1:9999"), ("https://box.lan:8443/", "https://box.lan:8443"),
    ("myhost", "http://myhost:11434")])
def test_ollama_host_forms(value: str | None, url: str) -> None:
    env = {} if value is None else {"OLLAMA_HOST": value}
    assert ollama_base_url(env) == url


def test_same_synthesizer_across_event_loops() -> None:
    """A resumed run or the held-out gate may call asyncio.run again with the same synthesizer."""
    with FakeOpenAIServer(["a", "b"]) as srv:
        s = synth(srv)
        assert asyncio.run(s.complete(req())).text == "a"
        assert asyncio.run(s.complete(req())).text == "b"
