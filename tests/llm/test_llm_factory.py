"""Model strings, the no-``--model`` fallback order, and the fake servers' own behaviour."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import subprocess
import sys

import pytest

from synthloop.llm import AnthropicSynthesizer, OpenAISynthesizer
from synthloop.llm.base import LLMRequest
from synthloop.llm.factory import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_OPENAI_MODEL,
    UnknownModel,
    make_synthesizer,
    parse_model,
    resolve_model,
)
from synthloop.llm.mutate import MutateSynthesizer
from synthloop.llm.providers import ModelConfigError
from synthloop.testing import FakeOpenAIServer, FakeReply


def _closed_port() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"


NO_OLLAMA = {"OLLAMA_HOST": _closed_port()}


def test_resolve_order() -> None:
    env = {**NO_OLLAMA, "SYNTHLOOP_MODEL": "anthropic/claude-x", "OPENAI_API_KEY": "sk-a",
           "ANTHROPIC_API_KEY": "sk-b"}
    assert resolve_model("openai/gpt-4o", env) == ("openai/gpt-4o", "model: openai/gpt-4o")
    m, line = resolve_model(None, env)
    assert m == "anthropic/claude-x" and "SYNTHLOOP_MODEL" in line
    env.pop("SYNTHLOOP_MODEL")
    m, line = resolve_model(None, env)
    assert m == f"openai/{DEFAULT_OPENAI_MODEL}" and "OPENAI_API_KEY" in line and "sk-a" not in line
    env.pop("OPENAI_API_KEY")
    m, line = resolve_model(None, env)
    assert m == f"anthropic/{DEFAULT_ANTHROPIC_MODEL}" and "ANTHROPIC_API_KEY" in line
    env.pop("ANTHROPIC_API_KEY")
    m, line = resolve_model(None, env)
    assert m == "mutate" and "baseline" in line and "\n" not in line


def test_choosing_the_default_model_imports_no_llm_sdk() -> None:
    """The sandbox is forked from the engine after the model is chosen, so whatever is imported by then is copied
    into every candidate process: the openai SDK alone is ~15 MB of heap, i.e. slower forks, exits and faults."""
    code = ("import sys\nfrom synthloop.llm.factory import resolve_model\n"
            f"print(resolve_model(None, {NO_OLLAMA!r})[0])\n"
            "print(sorted(m for m in ('openai', 'anthropic', 'httpx') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:2] == ["mutate", "[]"], res.stdout


def test_empty_env_values_count_as_unset() -> None:
    assert resolve_model(None, {**NO_OLLAMA, "SYNTHLOOP_MODEL": "", "OPENAI_API_KEY": " "})[0] == "mutate"


def test_local_ollama_is_found_through_ollama_host() -> None:
    with FakeOpenAIServer(["hi from ollama"], ollama_models=["qwen2.5-coder:7b", "llama3"]) as srv:
        m, line = resolve_model(None, {"OLLAMA_HOST": srv.host})
        assert m == "ollama/qwen2.5-coder:7b" and "Ollama" in line
    with FakeOpenAIServer(ollama_models=[]) as srv:  # reachable but no models: skipped
        assert resolve_model(None, {"OLLAMA_HOST": srv.host})[0] == "mutate"


def test_unknown_model_is_one_line_with_choices() -> None:
    for bad in ("gpt-4o", "google/gemini", "openai/", "replay:", ""):
        with pytest.raises(UnknownModel) as ei:
            parse_model(bad)
        msg = str(ei.value)
        assert "\n" not in msg and "openai/<model>" in msg and "replay:<run-dir>" in msg and "mutate" in msg
    with pytest.raises(UnknownModel):
        resolve_model("gpt-4o", {})
    with pytest.raises(UnknownModel):
        make_synthesizer("foo/bar")


def test_make_synthesizer_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert isinstance(make_synthesizer("mutate"), MutateSynthesizer)
    s = make_synthesizer("openai/gpt-4.1-mini", api_key="sk-x", max_attempts=2, backoff_base_s=0.5)
    assert isinstance(s, OpenAISynthesizer) and s.policy.max_attempts == 2 and s.policy.base_delay_s == 0.5
    assert "sk-x" not in json.dumps(s.describe())
    assert isinstance(make_synthesizer("anthropic/claude-haiku-4-5", api_key="k"), AnthropicSynthesizer)
    o = make_synthesizer("ollama/llama3")
    assert o.describe()["provider"] == "ollama" and o.name == "ollama/llama3"
    with pytest.raises(ModelConfigError) as ei:
        make_synthesizer("openai/gpt-4.1-mini")
    assert "OPENAI_API_KEY" in str(ei.value)
    with pytest.raises(ModelConfigError):
        make_synthesizer("anthropic/claude-haiku-4-5")
    # a local OpenAI-compatible server needs no key
    assert isinstance(make_synthesizer("openai/qwen", base_url="http://127.0.0.1:1/v1"), OpenAISynthesizer)


def test_make_synthesizer_pricing_path(tmp_path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("models:\n  qwen: {input: 1, output: 1}\n")
    s = make_synthesizer("openai/qwen", base_url="http://127.0.0.1:1/v1", pricing_path=f)
    assert s.describe()["priced"] is True


def test_fake_server_records_and_reports_exhausted_queue() -> None:
    with FakeOpenAIServer(["one"]) as srv:
        s = OpenAISynthesizer("m", base_url=srv.base_url, api_key="k")
        r = LLMRequest(messages=[{"role": "user", "content": "q"}])

        async def go():
            a = await s.complete(r)
            srv.push(FakeReply.answer("two"))
            b = await s.complete(r)
            await s.aclose()
            return a, b
        a, b = asyncio.run(go())
        assert (a.text, b.text) == ("one", "two")
        assert [x.path for x in srv.requests] == ["/v1/chat/completions"] * 2
        assert srv.bodies[0]["messages"] == [{"role": "user", "content": "q"}]
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=2)
        conn.request("POST", "/v1/chat/completions", json.dumps({"model": "m", "messages": []}),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 500 and b"exhausted" in resp.read()
        conn.close()


def test_fake_server_tcp_nodelay_keepalive_is_fast() -> None:
    """Sequential calls on one keep-alive connection must not pay the 40 ms delayed-ACK penalty."""
    import time

    with FakeOpenAIServer() as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=2)
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]})
        t0 = time.perf_counter()
        for _ in range(50):
            conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            assert conn.getresponse().read()
        per_call = (time.perf_counter() - t0) / 50
        conn.close()
    assert per_call < 0.02
