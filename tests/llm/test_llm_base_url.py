"""OPENAI_BASE_URL / ANTHROPIC_BASE_URL are honoured, recorded as the run's base URL, and never priced from the
shipped list prices (those are the providers' own endpoints'): only a price file the user gives prices them.

The runs go through the real `synthloop` CLI in a subprocess, the real SDKs and the fake servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthloop.llm.base import LLMRequest
from synthloop.llm.factory import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_OPENAI_MODEL,
    make_synthesizer,
    missing_key,
    pricing_status,
    resolve_model,
)
from synthloop.llm.pricing import Pricing, endpoint_price, official_endpoint
from synthloop.llm.providers import ModelConfigError
from synthloop.report.summary import summarize
from synthloop.testing import FakeAnthropicServer, FakeOpenAIServer, FakeReply

DEAD_OLLAMA = "127.0.0.1:9"  # nothing listens there: the Ollama probe fails fast
PROGRAM = "```python\ndef value():\n    x = 0.5  # tunable\n    return x\n```"
BASE_VARS = ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a new user's shell: no key, no model, no base URL, no Ollama; plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and k not in ("SYNTHLOOP_MODEL", "SYNTHLOOP_PRICING", *BASE_VARS)}
    return {**env, "OLLAMA_HOST": DEAD_OLLAMA, "PYTHONUNBUFFERED": "1", **extra}


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "synthloop.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=180)


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*BASE_VARS, "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "SYNTHLOOP_PRICING", "SYNTHLOOP_MODEL"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("server, var, model", [
    (FakeOpenAIServer, "OPENAI_BASE_URL", f"openai/{DEFAULT_OPENAI_MODEL}"),
    (FakeAnthropicServer, "ANTHROPIC_BASE_URL", f"anthropic/{DEFAULT_ANTHROPIC_MODEL}"),
])
def test_base_url_variable_alone_drives_a_run_that_records_it_and_shows_unpriced(tmp_path, server, var, model):
    """No --model, no --base-url, no key: the variable picks the provider, the run talks to that server, the base
    URL is in the run's record and in `show`, and a model the price table lists is still `unpriced` there."""
    run_dir = tmp_path / "r"
    with server(lambda body: FakeReply.answer(PROGRAM)) as srv:
        r = cli(["run", "examples/constant", "--iterations", "2", "--out", str(run_dir)],
                clean_env(**{var: srv.base_url}), tmp_path)
        posts = [x.path for x in srv.requests if x.method == "POST"]
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"model: {model} at {srv.base_url} ({var} is set" in r.stderr  # the choice is announced
    assert posts and set(posts) == {"/v1/chat/completions" if "OPENAI" in var else "/v1/messages"}
    assert "unpriced" in r.stderr and "$0.0000" not in r.stderr  # the progress bar's cost column
    s = summarize(run_dir)
    assert s["synthesizer"]["name"] == model and Pricing().lookup(model) is not None  # a listed model...
    assert s["base_url"] == s["synthesizer"]["base_url"] == srv.base_url
    assert s["synthesizer"]["base_url_from"] == var
    assert s["totals"]["priced"] is False and s["totals"]["calls"] == len(posts)  # ...unpriced off its endpoint
    show = cli(["show", str(run_dir)], clean_env(), tmp_path)
    assert show.returncode == 0, show.stderr
    assert f"LLM at {srv.base_url}" in show.stdout and "cost unpriced" in show.stdout
    assert "$0.0000" not in show.stdout and "--set llm.pricing=FILE" in show.stdout  # how to price it


def test_a_users_price_file_prices_a_run_at_another_endpoint(tmp_path, monkeypatch):
    """--set llm.pricing=FILE (here its pricing_path) is the user's word on what that endpoint charges."""
    prices = tmp_path / "prices.yaml"
    prices.write_text(f"models:\n  {DEFAULT_OPENAI_MODEL}: {{input: 2.0, output: 10.0}}\n")
    usage = {"input_tokens": 1000, "output_tokens": 100}
    with FakeOpenAIServer(lambda body: FakeReply.answer("ok", usage=usage)) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        priced = make_synthesizer(f"openai/{DEFAULT_OPENAI_MODEL}", pricing_path=prices)
        unpriced = make_synthesizer(f"openai/{DEFAULT_OPENAI_MODEL}")

        async def go() -> tuple[float, float]:
            req = LLMRequest(messages=[{"role": "user", "content": "x"}], timeout_s=5.0)
            try:
                return (await priced.complete(req)).cost_usd, (await unpriced.complete(req)).cost_usd
            finally:
                await priced.aclose()
                await unpriced.aclose()
        with_file, without = asyncio.run(go())
        assert len(srv.bodies) == 2
    assert with_file == pytest.approx((1000 * 2.0 + 100 * 10.0) / 1e6) and priced.describe()["priced"] is True
    assert priced.describe()["price_file"] == str(prices)
    assert without == 0.0 and unpriced.describe()["priced"] is False
    assert "not openai's own endpoint" in unpriced.describe()["unpriced_reason"]
    # the progress bar decides the same without building a client
    assert pricing_status(f"openai/{DEFAULT_OPENAI_MODEL}", None, prices)[0] is True
    assert pricing_status(f"openai/{DEFAULT_OPENAI_MODEL}")[0] is False


def test_the_providers_own_endpoint_is_matched_by_its_exact_host(monkeypatch):
    assert official_endpoint("openai", None) and official_endpoint("anthropic", None)
    assert official_endpoint("openai", "https://api.openai.com/v1")
    assert official_endpoint("anthropic", "https://API.anthropic.com")
    assert not official_endpoint("openai", "https://api.openai.com.proxy.example/v1")
    assert not official_endpoint("openai", "https://api.anthropic.com")
    assert not official_endpoint("openai", "http://127.0.0.1:8000/v1")
    listed = Pricing()
    assert endpoint_price(listed, "openai", "gpt-4.1-mini", "https://api.openai.com/v1") is not None
    assert endpoint_price(listed, "openai", "gpt-4.1-mini", "https://openrouter.example/api/v1") is None
    # OPENAI_BASE_URL naming OpenAI itself keeps list prices, and still needs the key
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    assert "OPENAI_API_KEY" in (missing_key("openai/gpt-4.1-mini") or "")
    with pytest.raises(ModelConfigError, match="OPENAI_API_KEY"):
        make_synthesizer("openai/gpt-4.1-mini")
    s = make_synthesizer("openai/gpt-4.1-mini", api_key="sk-test-not-sent")
    assert s.describe()["priced"] is True and s.describe()["base_url_from"] == "OPENAI_BASE_URL"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    assert missing_key("openai/gpt-4.1-mini") is None  # a local server needs no key


def test_a_server_serving_one_model_gets_that_model_not_a_default_name():
    with FakeOpenAIServer(ollama_models=["qwen2.5-coder-7b"]) as one:
        m, line = resolve_model(None, {"OPENAI_BASE_URL": one.base_url, "OLLAMA_HOST": DEAD_OLLAMA})
    assert m == "openai/qwen2.5-coder-7b" and one.base_url in line and "only model served" in line
    with FakeOpenAIServer(ollama_models=["a", "b"]) as many:  # a gateway: no guess
        m, line = resolve_model(None, {"OPENAI_BASE_URL": many.base_url, "OPENAI_API_KEY": "sk-t",
                                       "OLLAMA_HOST": DEAD_OLLAMA})
    assert m == f"openai/{DEFAULT_OPENAI_MODEL}" and "OPENAI_API_KEY and OPENAI_BASE_URL are set" in line
    m, line = resolve_model(None, {"ANTHROPIC_BASE_URL": "http://127.0.0.1:1", "OLLAMA_HOST": DEAD_OLLAMA})
    assert m == f"anthropic/{DEFAULT_ANTHROPIC_MODEL}" and "ANTHROPIC_BASE_URL is set" in line


def test_cli_takes_a_keyless_model_at_a_base_url_variable_and_refuses_one_without(tmp_path):
    no_key = cli(["run", "examples/constant", "--model", "openai/qwen", "--out", str(tmp_path / "a")], clean_env(),
                 tmp_path)
    assert no_key.returncode == 2 and not (tmp_path / "a").exists()
    assert no_key.stderr.strip().splitlines()[-1].startswith("error: openai/qwen needs OPENAI_API_KEY")
    with FakeOpenAIServer(lambda body: FakeReply.answer(PROGRAM)) as srv:
        ok = cli(["run", "examples/constant", "--model", "openai/qwen", "--iterations", "1", "-q", "--out",
                  str(tmp_path / "b")], clean_env(OPENAI_BASE_URL=srv.base_url), tmp_path)
        assert ok.returncode == 0, ok.stderr[-2000:]
        assert [b["model"] for b in srv.bodies] == ["qwen"]
