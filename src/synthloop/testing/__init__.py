"""Test helpers that ship with synthloop (fake LLM servers), for our tests and for users' own."""

from synthloop.testing.fake_llm import (
    FakeAnthropicServer,
    FakeOpenAIServer,
    FakeReply,
    FakeServer,
    RecordedRequest,
)

__all__ = ["FakeAnthropicServer", "FakeOpenAIServer", "FakeReply", "FakeServer", "RecordedRequest"]
