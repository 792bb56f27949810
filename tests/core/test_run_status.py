"""How a run ends is what its status says: failed (with a one-line cause), interrupted, stale, completed.

Every test drives the real `synthloop` CLI in a subprocess against a real fake OpenAI server on 127.0.0.1
and reads the real run database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from test_resume import _query, _show, synthloop_cmd

from synthloop.report.summary import summarize
from synthloop.testing.fake_llm import FakeOpenAIServer, FakeReply

FAST_RETRIES = ["--set", "llm.backoff_base_s=0.01", "--set", "llm.max_attempts=2"]


def program(x: float) -> str:
    return f"```python\ndef value():\n    x = {x}  # tunable\n    return x\n```"


def cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(synthloop_cmd() + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(synthloop_cmd() + args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def wait_for_calls(proc: subprocess.Popen, db: Path, n: int) -> None:
    deadline = time.time() + 60
    while (_query(db, "SELECT COUNT(*) FROM llm_calls") or [(0,)])[0][0] < n and time.time() < deadline:
        assert proc.poll() is None, "the run ended early: " + proc.stderr.read()[-800:]
        time.sleep(0.05)
    assert proc.poll() is None


def slow_server(delay: dict[str, float]) -> FakeOpenAIServer:
    """Answers every request with a valid program after ``delay["s"]`` seconds (mutable, to speed up later)."""
    return FakeOpenAIServer(lambda req: FakeReply.slow(delay["s"], program(0.3)))


def test_unreachable_endpoint_fails_the_run_at_its_first_call_with_a_one_line_cause(tmp_path, cli_env):
    run_dir = tmp_path / "r"
    env = {**cli_env, "OPENAI_API_KEY": "dummy"}
    t0 = time.monotonic()
    r = cli(["run", "examples/constant", "--model", "openai/x", "--base-url", "http://127.0.0.1:1/v1",
             "--iterations", "5", "--out", str(run_dir), "-q", *FAST_RETRIES], env, tmp_path)
    assert r.returncode == 1, r.stderr
    assert time.monotonic() - t0 < 60
    assert r.stderr.splitlines()[-1] == ("error: cannot reach http://127.0.0.1:1/v1: connection refused (after 2 "
                                         f"attempts); resume with: synthloop resume {run_dir}")
    assert "Traceback" not in r.stderr
    # one call (its two attempts) and no more: not one failed call per generation
    assert _query(run_dir / "run.sqlite", "SELECT COUNT(*) FROM llm_calls") == [(1,)]
    s = _show(run_dir, cli_env)
    assert s["status"] == "failed" and s["error"].startswith("cannot reach http://127.0.0.1:1/v1")
    assert s["gate"] is None  # the held-out gate is not spent on a run that could not search


def test_rejected_key_fails_the_run_without_retrying(tmp_path, cli_env):
    run_dir = tmp_path / "r"
    with FakeOpenAIServer(lambda req: FakeReply.error(401, message="Incorrect API key provided")) as srv:
        r = cli(["run", "examples/constant", "--model", "openai/x", "--base-url", srv.base_url, "--iterations", "3",
                 "--out", str(run_dir), "-q", *FAST_RETRIES], cli_env, tmp_path)
        n_requests = len(srv.bodies)
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines()[-1] == (f"error: the server at {srv.base_url} rejected the API key (HTTP 401); "
                                         f"resume with: synthloop resume {run_dir}")
    assert n_requests == 1
    assert summarize(run_dir)["status"] == "failed"


def test_a_connection_failure_after_a_successful_call_is_survived(tmp_path, cli_env):
    run_dir = tmp_path / "r"
    replies = [program(0.3), FakeReply.dropped(), FakeReply.dropped(), program(0.5)]
    with FakeOpenAIServer(replies) as srv:
        r = cli(["run", "examples/constant", "--model", "openai/x", "--base-url", srv.base_url, "--iterations", "3",
                 "--out", str(run_dir), "-q", "--json", *FAST_RETRIES], cli_env, tmp_path)
    assert r.returncode == 0, r.stderr
    s = summarize(run_dir)
    assert s["status"] == "completed"
    assert [c["status"] for c in s["candidates"]] == ["evaluated", "evaluated", "failed", "evaluated"]
    assert s["best"]["selection_score"] == 0.5


def test_sigint_to_the_process_group_leaves_the_run_interrupted_with_the_resume_hint(tmp_path, cli_env):
    run_dir, delay = tmp_path / "r", {"s": 0.3}
    with slow_server(delay) as srv:
        proc = start(["run", "examples/constant", "--model", "openai/x", "--base-url", srv.base_url,
                      "--iterations", "50", "--out", str(run_dir), "-q"], cli_env, tmp_path)
        wait_for_calls(proc, run_dir / "run.sqlite", 2)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group, sandbox included
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    s = summarize(run_dir)
    assert s["status"] == "interrupted" and s["hint"] == f"resume with: synthloop resume {run_dir}"


def test_sigterm_is_an_interrupt_and_a_second_process_cannot_execute_the_same_run(tmp_path, cli_env):
    run_dir, delay = tmp_path / "r", {"s": 0.3}
    with slow_server(delay) as srv:
        proc = start(["run", "examples/constant", "--model", "openai/x", "--base-url", srv.base_url,
                      "--iterations", "50", "--out", str(run_dir), "-q"], cli_env, tmp_path)
        wait_for_calls(proc, run_dir / "run.sqlite", 1)
        assert summarize(run_dir)["status"] == "running"  # the lock is held: not stale
        second = cli(["resume", str(run_dir), "-q"], cli_env, tmp_path)
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"error: run {str(run_dir)!r} is being executed by another process (pid {proc.pid}); "
            "wait for it to end or stop it first"]
        assert proc.poll() is None  # the first one goes on
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    text = cli(["show", str(run_dir)], cli_env, tmp_path).stdout
    assert "status interrupted" in text and f"resume with: synthloop resume {run_dir}" in text
    ends = _query(run_dir / "run.sqlite", "SELECT data FROM events WHERE kind='end'")
    assert len(ends) == 1 and "interrupted" in ends[0][0]


def test_kill_9_shows_stale_from_the_free_lock_then_resume_completes(tmp_path, cli_env):
    run_dir, delay = tmp_path / "r", {"s": 0.3}
    with slow_server(delay) as srv:
        proc = start(["run", "examples/constant", "--model", "openai/x", "--base-url", srv.base_url,
                      "--iterations", "4", "--out", str(run_dir), "-q"], cli_env, tmp_path)
        wait_for_calls(proc, run_dir / "run.sqlite", 1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _query(run_dir / "run.sqlite", "SELECT value FROM meta WHERE key='status'") == [('"running"',)]
        s = _show(run_dir, cli_env)
        assert s["status"] == "stale" and s["hint"] == f"resume with: synthloop resume {run_dir}"
        delay["s"] = 0.0
        r = cli(["resume", str(run_dir), "-q"], cli_env, tmp_path)
    assert r.returncode == 0, r.stderr
    s = summarize(run_dir)
    assert s["status"] == "completed" and s["hint"] is None and len(s["candidates"]) == 5


def test_resume_of_a_completed_run_says_so_and_iterations_extend_it(tmp_path, cli_env):
    run_dir = tmp_path / "r"
    assert cli(["run", "examples/constant", "--model", "mutate", "--iterations", "2", "--out", str(run_dir), "-q"],
               cli_env, tmp_path).returncode == 0
    events = _query(run_dir / "run.sqlite", "SELECT COUNT(*) FROM events")
    r = cli(["resume", str(run_dir)], cli_env, tmp_path)
    assert r.returncode == 0 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"run {run_dir} is already completed (2 iterations); nothing to resume. To extend it: "
        f"synthloop resume {run_dir} --iterations N (N > 2)"]
    assert _query(run_dir / "run.sqlite", "SELECT COUNT(*) FROM events") == events  # the gate was not rerun
    r = cli(["resume", str(run_dir), "--iterations", "4", "-q"], cli_env, tmp_path)
    assert r.returncode == 0, r.stderr
    s = summarize(run_dir)
    assert s["status"] == "completed" and len(s["candidates"]) == 5


SSD_TINY = ["--agents", "2", "--steps", "20", "--map", "small", "--feedback-seeds", "[0]",
            "--selection-seeds", "[100]", "--heldout-seeds", "[1000]"]


@pytest.mark.timeout(180)
def test_a_run_where_nothing_is_valid_prints_no_valid_candidate_with_the_reasons(tmp_path, cli_env):
    """ssd/gathering starts from no seed (examples/constant always has a valid one): every proposal is rejected."""
    run_dir = tmp_path / "r"
    rejected = "```python\nimport os\n\ndef act(state):\n    return 0\n```"
    with FakeOpenAIServer(lambda req: rejected) as srv:
        r = cli(["run", "ssd/gathering", "--model", "openai/x", "--base-url", srv.base_url, "--iterations", "2",
                 "--out", str(run_dir), "--set", "search.retries=0", *SSD_TINY], cli_env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "no valid candidate" in r.stdout
    s = summarize(run_dir)
    assert s["status"] == "completed" and s["best"] is None and s["valid_candidates"] == 0
    assert s["gate"]["status"] == "not run: no valid candidate"
    assert _query(run_dir / "run.sqlite", "SELECT COUNT(*) FROM evaluations") == [(0,)]
    top = s["rejections"][0]
    assert top["count"] == len(s["candidates"]) == 3
    assert any(x["reason"].startswith("imports are not available") for x in s["rejections"])
    assert f"3x {top['reason']}" in r.stdout


def test_rejection_reasons_group_candidates_by_what_went_wrong():
    from synthloop.report.summary import rejections

    def cand(i: int, status: str, diagnostics: list[str], kind: str | None = None, valid: bool = False) -> dict:
        return {"id": i, "status": status, "valid": valid, "diagnostics": diagnostics, "error_kind": kind}

    trace = ("crash in the smoke test (exception): Traceback (most recent call last):\n  File \"x.py\", line 3\n"
             "ZeroDivisionError: division by zero\nstderr (tail): noise")
    cands = [cand(1, "invalid", []), cand(2, "invalid", []), cand(3, "evaluated", ["[case fb] value 2 is above 1"],
             "invalid"), cand(4, "evaluated", ["[case ho] value 2 is above 1"], "invalid"),
             cand(5, "invalid", []), cand(6, "evaluated", [], valid=True), cand(7, "proposed", [])]
    notes = {1: "line 1: imports are not available; no function policy()", 2: "line 7: imports are not available",
             5: trace}
    assert rejections(cands, notes) == [
        {"reason": "imports are not available", "count": 2},
        {"reason": "invalid in evaluation (invalid): value 2 is above 1", "count": 2},
        {"reason": "no function policy()", "count": 1},
        {"reason": "crash in the smoke test (exception): ZeroDivisionError: division by zero", "count": 1},
    ]
