"""Bad input: one line naming the problem and the valid choices, exit code 2, no traceback."""

import subprocess
import sys

import pytest


def synthloop_cmd() -> list[str]:
    return [sys.executable, "-m", "synthloop.cli"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["run", "no/such_task"], "valid tasks: "),
        (["run", "examples/constant", "--model", "gpt5"], "openai/<model>"),
        (["run", "examples/constant", "--strategy", "annealing"], "search.strategy"),
        (["run", "examples/constant", "--set", "search.iteratons=3"], "valid keys"),
        (["run", "examples/constant", "--set", "task_options.bogus=1"], "valid options: "),
        (["run", "--config", "does/not/exist.yaml"], "does not exist"),
        (["show", "not-a-run-dir"], "not a run directory"),
        (["eval", "examples/constant", "--artifact", "missing.py"], "does not exist"),
        (["bench", "nothing"], "valid choices: engine"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle, cli_env, tmp_path):
    r = subprocess.run(synthloop_cmd() + args, capture_output=True, text=True, env=cli_env, cwd=tmp_path, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0]
    assert "Traceback" not in r.stderr


def test_malformed_yaml_config(cli_env, tmp_path):
    (tmp_path / "c.yaml").write_text("task: examples/constant\nsearch: [1, 2\n")
    r = subprocess.run(synthloop_cmd() + ["run", "--config", "c.yaml"], capture_output=True, text=True,
                       env=cli_env, cwd=tmp_path, timeout=60)
    assert r.returncode == 2 and "not valid YAML" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_domain_command_errors_keep_exit_code_2(cli_env, tmp_path):
    r = subprocess.run(synthloop_cmd() + ["eval", "ssd/gathering", "--policy", "builtin:nope"], capture_output=True,
                       text=True, env=cli_env, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "valid: bfs" in r.stderr and "Traceback" not in r.stderr
