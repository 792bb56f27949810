"""Bad input: one line naming the problem and the valid choices, exit code 2, no traceback.

Every case runs the real CLI in a subprocess with `click` made unimportable: typer >= 0.29 no longer
installs it and the project does not declare it, so no error path may depend on it (CI has click only
because Ray pulls it in).
"""

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HIDE = """
import os, sys
for _name in os.environ.get("SYNTHLOOP_TEST_HIDE", "").split(","):
    if _name:
        sys.modules[_name] = None  # `import NAME` raises ModuleNotFoundError, as when it is not installed
"""


def synthloop_cmd() -> list[str]:
    return [sys.executable, "-m", "synthloop.cli"]


def typer_vendors_click() -> bool:
    """typer >= 0.29 carries its own click (typer._click); older ones import the click package."""
    return importlib.util.find_spec("typer._click") is not None


@pytest.fixture
def no_click_env(cli_env, tmp_path):
    """cli_env, plus a sitecustomize that makes `click` unimportable in the CLI and its children (where the
    installed typer does not need it itself: on older typer the same tests run with click present)."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(HIDE)
    env = dict(cli_env)
    env["PYTHONPATH"] = os.pathsep.join(x for x in (str(shim), env.get("PYTHONPATH")) if x)
    env["SYNTHLOOP_TEST_HIDE"] = "click" if typer_vendors_click() else ""
    return env


def one_line_error(r: subprocess.CompletedProcess) -> str:
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    return lines[0]


@pytest.mark.parametrize(
    "args, needle",
    [
        # usage errors, raised by typer's own (vendored or real) click
        (["no-such-command"], "valid choices: autoresearch, bench, eval"),
        (["run", "examples/constant", "--iterations", "abc"], "'--iterations'"),
        (["show"], "Missing argument"),
        (["bench", "nothing"], "valid choices: engine"),
        (["ssd", "nosuch"], "valid choices: bench, eval, gepa, render, train-q"),
        (["ssd", "eval", "gathering", "--agents", "abc"], "'--agents'"),
        # the run command's own checks
        (["run", "no/such_task"], "valid tasks: "),
        (["run", "examples/constant", "--model", "gpt5"], "openai/<model>"),
        (["run", "examples/constant", "--strategy", "annealing"], "search.strategy"),
        (["run", "examples/constant", "--executor", "bogus"], "'local' or 'ray'"),
        (["run", "examples/constant", "--set", "search.iteratons=3"], "valid keys"),
        (["run", "examples/constant", "--set", "task_options.bogus=1"], "valid options: "),
        (["run", "examples/constant", "--bogus-flag", "1"], "its own options: "),
        (["run", "--config", "does/not/exist.yaml"], "does not exist"),
        (["tasks", "no/such_task"], "valid tasks: "),
        (["show", "not-a-run-dir"], "not a run directory"),
        (["eval", "examples/constant", "--artifact", "missing.py"], "does not exist"),
        # argparse-based subcommands keep the contract too (more cases run in-process in their own tests)
        (["bench", "kernels", "--backend", "tpu"], "invalid choice: 'tpu'"),
        (["bench", "engine", "--iterations", "x"], "invalid int value"),
        (["table"], "required: runs"),
        (["autoresearch", "examples/constant"], "--synthesizer-model"),
        (["autoresearch", "resume", "no-such-dir"], "holds no autoresearch run"),
        # domain errors of the social dilemmas and of report
        (["render", "kernels/saxpy"], "render supports ssd/gathering and ssd/cleanup"),
        (["ssd", "gepa", "gathering", "--budget", "0"], "bad --budget"),
        (["report", "no-such-dir"], "is not a directory"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle, no_click_env, tmp_path):
    r = subprocess.run(synthloop_cmd() + args, capture_output=True, text=True, env=no_click_env, cwd=tmp_path,
                       timeout=120)
    assert r.returncode == 2, r.stderr
    line = one_line_error(r)
    assert line.startswith("error: ") and needle in line
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_malformed_yaml_config(no_click_env, tmp_path):
    (tmp_path / "c.yaml").write_text("task: examples/constant\nsearch: [1, 2\n")
    r = subprocess.run(synthloop_cmd() + ["run", "--config", "c.yaml"], capture_output=True, text=True,
                       env=no_click_env, cwd=tmp_path, timeout=60)
    assert r.returncode == 2 and "not valid YAML" in one_line_error(r)
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_domain_command_errors_keep_exit_code_2(no_click_env, tmp_path):
    r = subprocess.run(synthloop_cmd() + ["eval", "ssd/gathering", "--policy", "builtin:nope"], capture_output=True,
                       text=True, env=no_click_env, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "valid: bfs" in one_line_error(r)


def test_no_arguments_prints_the_help_and_exits_0(no_click_env, tmp_path):
    r = subprocess.run(synthloop_cmd(), capture_output=True, text=True, env=no_click_env, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "run" in r.stdout and "tasks" in r.stdout and r.stderr == ""


def test_an_unexpected_failure_is_one_line_with_the_traceback_kept_in_a_file(no_click_env, tmp_path):
    run = tmp_path / "damaged"
    run.mkdir()
    (run / "run.sqlite").write_bytes(b"this is not an SQLite database, whatever its name says" * 4)
    env = {**no_click_env, "TMPDIR": str(tmp_path)}
    r = subprocess.run(synthloop_cmd() + ["show", str(run)], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=60)
    assert r.returncode == 1
    line = one_line_error(r)
    assert line.startswith("error: DatabaseError: file is not a database")
    (saved,) = tmp_path.glob("synthloop-traceback-*.txt")
    assert str(saved) in line and "Traceback (most recent call last)" in saved.read_text()


def test_ctrl_c_during_a_run_exits_130_with_the_resume_command(no_click_env, tmp_path):
    cmd = synthloop_cmd() + ["run", "examples/constant", "--iterations", "100000", "-q"]
    proc = subprocess.Popen(cmd, env=no_click_env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        seen = []
        while not any(x.startswith("run directory: ") for x in seen):
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "".join(seen)
            seen.append(line)
        run_dir = seen[-1].split(": ", 1)[1].strip()
        deadline = time.monotonic() + 60  # wait until the search is under way, then press Ctrl-C
        while not list(Path(tmp_path, run_dir, "artifacts").glob("*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole process group
        rest = proc.stderr.read()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, rest
    assert "Traceback" not in rest
    assert [x for x in rest.splitlines() if x.strip()][-1] == f"interrupted; resume with: synthloop resume {run_dir}"
