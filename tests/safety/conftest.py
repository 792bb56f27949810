"""Fixtures of the safety tests; the scripted agent and helpers live in ``safety_scripted``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from safety_scripted import SafetyHarness, scripted_agent

from synthloop.testing.fake_llm import FakeOpenAIServer


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., SafetyHarness]]:
    """``harness(env_id, responder=None)`` starts a fake server playing the scripted agent for ``env_id``."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    servers: list[FakeOpenAIServer] = []

    def make(env_id: str, responder: Callable[[dict[str, Any]], Any] | None = None) -> SafetyHarness:
        srv = FakeOpenAIServer(responder or scripted_agent(env_id)).start()
        servers.append(srv)
        return SafetyHarness(tmp_path, srv)

    yield make
    for srv in servers:
        srv.stop()
