import os
import sys
from pathlib import Path

import pytest


@pytest.fixture
def cli_env(tmp_path):
    """Environment for running the real `synthloop` CLI in a subprocess: no keys, no Ollama, mutate default."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "SYNTHLOOP_MODEL"}
    env["OLLAMA_HOST"] = "127.0.0.1:9"  # nothing listens there: the Ollama probe fails fast
    env["PYTHONUNBUFFERED"] = "1"
    return env


def synthloop_cmd() -> list[str]:
    return [sys.executable, "-m", "synthloop.cli"]


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
