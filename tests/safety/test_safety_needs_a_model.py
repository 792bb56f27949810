"""A safety task evolves a natural-language specification, which the offline ``mutate`` baseline cannot
improve: ``run`` refuses it, both when asked for and as the no-model fallback, with one line that says how to
give a model, exit code 2, and no run directory (real CLI in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

README_RUN = ["safety/boat_race", "--method", "epo_safe", "--rounds", "3", "--episodes", "5",
              "--false-positive-rate", "0.5"]


@pytest.mark.parametrize("model", [[], ["--model", "mutate"]], ids=["fallback", "explicit"])
def test_mutate_is_refused_for_a_text_specification(tmp_path: Path, model: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "SYNTHLOOP_MODEL"}
    env["OLLAMA_HOST"] = "127.0.0.1:9"  # nothing listens there: without --model the fallback is mutate
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "synthloop.cli", "run", *README_RUN, *model, "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    line = lines[0]
    assert line.startswith("error: safety/boat_race needs a model"), line
    assert "--model openai/<model>" in line and "--base-url" in line and "ollama/<model>" in line
    assert ("no model is configured" in line) is not model
    assert not out.exists()  # refused before any run directory is created
