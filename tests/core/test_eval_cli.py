"""`synthloop eval --artifact F` is loud about an invalid artifact: the problems on stderr, exit 1."""

from __future__ import annotations

import json
import subprocess

import pytest
from test_resume import synthloop_cmd


def eval_cli(tmp_path, env, source: str, *extra: str) -> subprocess.CompletedProcess:
    art = tmp_path / "artifact.py"
    art.write_text(source)
    return subprocess.run(synthloop_cmd() + ["eval", "examples/constant", "--artifact", str(art), *extra], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("source", "problem"), [
    ("def value(:\n    return 1\n", "SyntaxError: invalid syntax"),
    ("def other():\n    return 0.5\n", "the module must define a function value()"),
])
def test_an_artifact_the_validator_rejects_exits_1_with_its_problems(tmp_path, cli_env, source, problem):
    r = eval_cli(tmp_path, cli_env, source)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines[0] == f"error: {tmp_path / 'artifact.py'} is not a valid examples/constant artifact:"
    assert problem in lines[1] and "Traceback" not in r.stderr


def test_json_output_of_a_rejected_artifact_still_exits_1(tmp_path, cli_env):
    r = eval_cli(tmp_path, cli_env, "def value(:\n", "--json")
    assert r.returncode == 1
    result = json.loads(r.stdout)
    assert result["valid"] is False and result["problems"][0].startswith("SyntaxError")


def test_an_artifact_invalid_in_the_sandbox_exits_1_naming_the_pool(tmp_path, cli_env):
    r = eval_cli(tmp_path, cli_env, "def value():\n    return 2.0\n")  # above the maximum 1: the judge says invalid
    assert r.returncode == 1
    assert "feedback: valid=False" in r.stdout and "[case fb] value 2.0 is above the maximum 1" in r.stdout
    assert "is invalid on the feedback pool(s)" in r.stderr


def test_a_valid_artifact_exits_0_with_its_scores(tmp_path, cli_env):
    r = eval_cli(tmp_path, cli_env, "def value():\n    return 0.5\n", "--pool", "all")
    assert r.returncode == 0, r.stderr
    assert "feedback: valid=True score=0.5" in r.stdout and "heldout: valid=True score=0.5" in r.stdout
