"""From a model string to a :class:`Synthesizer`, and which model to use when none is given.

Model strings: ``openai/<model>``, ``anthropic/<model>``, ``ollama/<model>``,
``replay:<run-dir>``, ``mutate``. Without ``--model`` the choice falls through
``SYNTHLOOP_MODEL`` → ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` →
``ANTHROPIC_API_KEY`` or ``ANTHROPIC_BASE_URL`` → a local Ollama that answers
→ the offline ``mutate`` baseline, and the choice is announced in one line, so
that a run never silently uses (or pays for) a model the user did not expect,
and never silently degrades to blind mutation. A ``*_BASE_URL`` naming a
server other than the provider's own that serves exactly one model (vLLM,
llama.cpp) gets that model rather than a default name it does not serve.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from synthloop.llm.base import Synthesizer
from synthloop.llm.pricing import Pricing, env_base_url, official_endpoint, unpriced_reason
from synthloop.llm.providers import ModelConfigError, resolve_base_url
from synthloop.llm.retry import RetryPolicy

DEFAULT_OPENAI_MODEL = "gpt-4.1-mini"
# claude-sonnet-4-5 is marked deprecated (end of life 2026-11-30) by the installed anthropic SDK
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-6"
VALID_CHOICES = "openai/<model>, anthropic/<model>, ollama/<model>, replay:<run-dir>, mutate"


class UnknownModel(ModelConfigError):
    """A model string no provider understands; ``str()`` is one line with the valid choices."""

    def __init__(self, model: str, problem: str | None = None) -> None:
        self.model = model
        super().__init__(f"{problem or f'unknown model {model!r}'}; valid choices: {VALID_CHOICES}")


def parse_model(model: str) -> tuple[str, str]:
    """Split a model string into ``(provider, rest)``; raise :class:`UnknownModel` if it is not one of ours."""
    m = model.strip()
    if m == "mutate":
        return "mutate", ""
    if m.startswith("replay:"):
        rest = m[len("replay:"):]
        if not rest:
            raise UnknownModel(model, "replay: needs a run directory, e.g. replay:runs/<run-id>")
        return "replay", rest
    provider, sep, name = m.partition("/")
    if sep and provider in ("openai", "anthropic", "ollama"):
        if not name:
            raise UnknownModel(model, f"{provider}/ needs a model name, e.g. {provider}/<model>")
        return provider, name
    raise UnknownModel(model)


def _probe_ollama(env: Mapping[str, str], timeout_s: float = 0.2) -> str | None:
    """The first model of a local Ollama that answers quickly, else None (never raises)."""
    # not from openai_provider: the SDK import would land in every sandboxed process forked after this
    from synthloop.llm.providers import ollama_base_url

    base = ollama_base_url(env)
    parts = urlsplit(base)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 11434), timeout=timeout_s):
            pass
        with urllib.request.urlopen(f"{base}/api/tags", timeout=max(0.5, timeout_s)) as r:  # noqa: S310
            data = json.loads(r.read() or b"{}")
        models = data.get("models") or []
        for m in models:
            name = m.get("name") or m.get("model") if isinstance(m, dict) else None
            if name:
                return str(name)
    except (OSError, ValueError, AttributeError):
        return None
    return None


def _served_model(base_url: str, api_key: str | None, timeout_s: float = 1.0) -> str | None:
    """The model an OpenAI-compatible server lists at ``/models`` when it lists exactly one, else None.

    A vLLM or llama.cpp server serves one model under its own name; the default OpenAI name would be a 404
    there. A gateway listing many models gets no guess (never raises).
    """
    req = urllib.request.Request(base_url.rstrip("/") + "/models",
                                 headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:  # noqa: S310 - the user's own base URL
            data = json.loads(r.read() or b"{}")
        ids = [m.get("id") for m in data.get("data") or [] if isinstance(m, dict) and m.get("id")]
    except (OSError, ValueError, AttributeError):
        return None
    return str(ids[0]) if len(ids) == 1 else None


def _from_provider_env(env: Mapping[str, str], provider: str, default: str) -> tuple[str, str] | None:
    """``provider/<model>`` and the line saying why, when that provider's key or base URL is set; else None."""
    key_var, url_var = f"{provider.upper()}_API_KEY", f"{provider.upper()}_BASE_URL"
    key = (env.get(key_var) or "").strip()
    url = env_base_url(provider, env)
    if not key and not url:
        return None
    named = [v for v, on in ((key_var, key), (url_var, url)) if on]
    why = f"{' and '.join(named)} {'are' if len(named) > 1 else 'is'} set"
    name = default
    if url and provider == "openai" and not official_endpoint(provider, url):
        served = _served_model(url, key or None)
        if served:
            name, why = served, f"the only model served there; {why}"
    where = f" at {url}" if url else ""
    return f"{provider}/{name}", f"model: {provider}/{name}{where} ({why}; choose another with --model)"


def resolve_model(model: str | None, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Pick the model and say why in one line: explicit → SYNTHLOOP_MODEL → a provider's key or base URL →
    local Ollama → mutate."""
    env = os.environ if env is None else env
    if model:
        parse_model(model)
        return model, f"model: {model}"
    chosen = (env.get("SYNTHLOOP_MODEL") or "").strip()
    if chosen:
        parse_model(chosen)
        return chosen, f"model: {chosen} (from SYNTHLOOP_MODEL)"
    for provider, default in (("openai", DEFAULT_OPENAI_MODEL), ("anthropic", DEFAULT_ANTHROPIC_MODEL)):
        found = _from_provider_env(env, provider, default)
        if found:
            return found
    local = _probe_ollama(env)
    if local:
        m = f"ollama/{local}"
        return m, f"model: {m} (local Ollama found, no API key set; choose another with --model)"
    return "mutate", ("model: mutate, the offline baseline with no LLM (no --model, SYNTHLOOP_MODEL, API key or "
                      "local Ollama found); it perturbs constants blindly, so results are not an LLM's")


def make_synthesizer(model: str, *, base_url: str | None = None, api_key: str | None = None,
                     max_attempts: int = 5, backoff_base_s: float = 1.0,
                     pricing_path: str | os.PathLike[str] | None = None) -> Synthesizer:
    """Build the synthesizer for ``model``; raises :class:`ModelConfigError` (one line) if it cannot."""
    provider, rest = parse_model(model)
    if provider == "mutate":
        from synthloop.llm.mutate import MutateSynthesizer
        return MutateSynthesizer()
    if provider == "replay":
        from synthloop.llm.replay import ReplaySynthesizer
        if not Path(rest).is_dir():
            raise ModelConfigError(f"replay: run directory {rest!r} does not exist")
        return ReplaySynthesizer(rest)
    policy = RetryPolicy(max_attempts=max_attempts, base_delay_s=backoff_base_s)
    pricing = Pricing.from_env(path=pricing_path)
    if provider == "openai":
        from synthloop.llm.openai_provider import OpenAISynthesizer
        return OpenAISynthesizer(rest, base_url=base_url, api_key=api_key, policy=policy, pricing=pricing)
    if provider == "anthropic":
        from synthloop.llm.anthropic_provider import AnthropicSynthesizer
        return AnthropicSynthesizer(rest, base_url=base_url, api_key=api_key, policy=policy, pricing=pricing)
    from synthloop.llm.openai_provider import make_ollama
    return make_ollama(rest, base_url=base_url, policy=policy, pricing=pricing)


def missing_key(model: str, base_url: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The one-line error when ``model`` needs an API key that is not set, else None.

    A base URL (``--base-url``, or ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL``) other than the provider's own
    needs no key: local servers ignore it. Checked before a run directory exists; builds no client.
    """
    env = os.environ if env is None else env
    provider, _ = parse_model(model)
    if provider not in ("openai", "anthropic"):
        return None
    key_var = f"{provider.upper()}_API_KEY"
    url, _from = resolve_base_url(provider, base_url, env)
    if (env.get(key_var) or "").strip() or not official_endpoint(provider, url):
        return None
    return (f"{model} needs {key_var} in the environment (or --base-url / {provider.upper()}_BASE_URL for a "
            "compatible server)")


def pricing_status(model: str, base_url: str | None = None, pricing_path: str | os.PathLike[str] | None = None,
                   env: Mapping[str, str] | None = None) -> tuple[bool, str | None]:
    """``(priced, why not)`` for a run's model, as its synthesizer will decide it, without building a client
    (no SDK import, no key on the heap): for the progress bar, which starts before the synthesizer exists."""
    env = os.environ if env is None else env
    provider, rest = parse_model(model)
    if provider not in ("openai", "anthropic"):  # mutate, replay and Ollama cost nothing
        return True, None
    url, _from = resolve_base_url(provider, base_url, env)
    pricing = Pricing.from_env(dict(env), path=pricing_path)
    reason = unpriced_reason(pricing, provider, rest, url)
    return reason is None, reason
