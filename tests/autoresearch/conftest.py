import pytest
from ar_scripted import synth_responder

from synthloop.testing.fake_llm import FakeOpenAIServer


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-autoresearch")


@pytest.fixture
def synth_server():
    with FakeOpenAIServer(synth_responder) as srv:
        yield srv


def pytest_configure(config):
    config.addinivalue_line("markers", "harness(**kwargs): keyword arguments for the Harness built by `service`")
