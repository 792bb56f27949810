import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from exec_tasks import SECRET, EchoTask  # noqa: E402


@pytest.fixture(scope="module")
def executor():
    """One LocalExecutor per module, started with an API key in the engine's environment."""
    from synthloop.execution.local import LocalExecutor

    os.environ["OPENAI_API_KEY"] = SECRET
    try:
        ex = LocalExecutor(EchoTask(), workers=4)
        ex.start()
    finally:
        del os.environ["OPENAI_API_KEY"]
    yield ex
    ex.close()
