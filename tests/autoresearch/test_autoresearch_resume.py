"""Resuming an interrupted autoresearch run: a real `synthloop autoresearch` process (scripted researcher and
synthesizer on fake OpenAI-compatible servers) is SIGKILLed mid-measurement, resumed, SIGKILLed again while the
researcher is editing, and resumed to completion: only in-flight work is lost, the ledger and the spent budget
carry over, the workspace is the incumbent, and the run ends with the final gate and the report."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from ar_scripted import program, synth_responder, tool

from synthloop.autoresearch.cli import main
from synthloop.autoresearch.pipeline import DEFAULT_PROMPT, PROMPT_FILE
from synthloop.autoresearch.run import _lock
from synthloop.testing.fake_llm import FakeOpenAIServer, FakeReply

BOLD = DEFAULT_PROMPT.replace("$brief\n", "$brief\n\nBE BOLD: aim for the maximum.\n")
SLOW = BOLD.replace("BE BOLD: aim for the maximum.", "BE BOLD, SLOW: think it over.")
TIMID = BOLD.replace("BE BOLD: aim for the maximum.", "be timid.")
CLI = "import sys; from synthloop.autoresearch.cli import main; sys.exit(main(sys.argv[1:]))"


def wait_for(cond, proc: subprocess.Popen, log: Path, what: str, timeout: float = 25.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)  # the harness process only, as `kill -9 PID` would
    proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # test hygiene: whatever of its session was still exiting
    except ProcessLookupError:
        pass


def blocking(script: list[str], release: threading.Event):
    """A researcher that answers ``script`` in order, then hangs (until ``release``) on its next turn."""
    queue = list(script)

    def respond(req: dict) -> str | FakeReply:
        if queue:
            return queue.pop(0)
        release.wait(60)
        return FakeReply.error(500, message="released")

    return respond


def test_killed_run_resumes_and_loses_only_in_flight_work(tmp_path):
    release = threading.Event()

    def synth(req: dict) -> str:
        system = next(m["content"] for m in req["messages"] if m["role"] == "system")
        user = next(m["content"] for m in req["messages"] if m["role"] == "user")
        if "SLOW" in system:
            if "x = 0.5" in user:  # the second generation of the slow experiment: hang until killed
                release.wait(60)
            return program(0.5)
        return synth_responder(req)

    run = tmp_path / "ar"
    log = tmp_path / "session.log"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    with FakeOpenAIServer(synth) as synth_srv:
        start = ["examples/constant", "--synthesizer-model", "openai/fake-synth", "--synthesizer-base-url",
                 synth_srv.base_url, "--researcher-model", "openai/fake-r", "--replicates", "2", "--budget-evals", "4",
                 "--workers", "2", "--out", str(run)]
        # session 1: keeps an edit, then is killed while the next experiment is being measured
        r1 = [tool("write_file", path=PROMPT_FILE, content=BOLD), tool("run_experiment", summary="bold", reason="a"),
              tool("write_file", path=PROMPT_FILE, content=SLOW), tool("run_experiment", summary="slow", reason="b")]
        with FakeOpenAIServer(blocking(r1, release)) as res1, open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-c", CLI, *start, "--researcher-base-url", res1.base_url],
                                    stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
                                    start_new_session=True)
            try:
                wait_for(lambda: any("SLOW" in str(b) and "x = 0.5" in str(b) for b in synth_srv.bodies), proc, log,
                         "the slow experiment's second generation")
            finally:
                kill(proc)
        # session 2: resumed; killed while the researcher has an unmeasured edit in the workspace
        release2 = threading.Event()
        r2 = [tool("ledger"), tool("write_file", path=PROMPT_FILE, content=TIMID)]
        with FakeOpenAIServer(blocking(r2, release2)) as res2, open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-c", CLI, "resume", str(run), "--researcher-base-url",
                                     res2.base_url], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
                                    start_new_session=True)
            try:
                wait_for(lambda: res2.n_requests >= 3, proc, log, "the researcher's third turn")
            finally:
                kill(proc)
                release2.set()
        assert "experiment 2 was interrupted while being measured" in log.read_text()
        # session 3: resumed in this process, to the end of the evaluation budget
        r3 = [tool("status"), tool("write_file", path=PROMPT_FILE, content=TIMID),
              tool("run_experiment", summary="timid", reason="c"), tool("run_experiment", summary="again", reason="d"),
              tool("run_experiment", summary="over budget", reason="e")]
        with FakeOpenAIServer(r3) as res3:
            assert main(["resume", str(run), "--researcher-base-url", res3.base_url]) == 0
            seen = json.dumps(res3.bodies)
        release.set()

    db = sqlite3.connect(run / "autoresearch.sqlite")
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM experiments ORDER BY id")]
    assert [(r["kind"], r["decision"]) for r in rows] == [
        ("baseline", "baseline"), ("experiment", "keep"), ("interrupted", "interrupted"), ("interrupted", "interrupted"),
        ("experiment", "discard"), ("experiment", "discard")]
    # the measurement in flight: its snapshot, diff and what its inner runs had spent are kept
    slow = rows[2]
    assert "measured" in slow["decision_reason"] and "SLOW" in slow["diff"] and slow["tokens"] > 0
    git = ["git", "--git-dir", str(run / "pipeline.git"), "rev-parse", "refs/experiments/2"]
    assert slow["commit_sha"] == subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()
    charged = db.execute("SELECT SUM(input_tokens + output_tokens) FROM llm_calls WHERE role='synthesizer'"
                         " AND experiment=2").fetchone()[0]
    assert charged == slow["tokens"]
    assert sorted(p.name for p in (run / "inner" / "interrupted").iterdir()) == ["exp002_r0", "exp002_r1"]
    assert not list((run / "inner").glob("exp002_r*"))
    # the half-made edit of session 2
    assert rows[3]["commit_sha"] is None and "be timid" in rows[3]["diff"] and rows[3]["tokens"] == 0
    # the budget carried over: session 3 saw two evaluations spent, got two more, then 429
    assert '\\"experiments\\": 2' in seen
    refusals = [dict(r) for r in db.execute("SELECT * FROM refusals")]
    assert refusals[-1]["reason"] == "evaluation budget spent: 4 of 4"
    meta = {r["key"]: json.loads(r["value"]) for r in db.execute("SELECT key, value FROM meta")}
    assert [s["kind"] for s in meta["sessions"]] == ["start", "resume", "resume"]
    assert meta["wall_used_s"] > 0 and "budget spent" in meta["stop_reason"]
    # the workspace is the incumbent; the gate and the report ran
    assert (run / "workspace" / PROMPT_FILE).read_text() == BOLD
    assert meta["gate"]["status"] == "beats"
    md = (run / "autoresearch_report.md").read_text()
    assert "2 kept" not in md and "1 kept, 2 discarded, 2 interrupted" in md and "session 3 (resume)" in md


def test_resume_refuses_what_it_cannot_continue(tmp_path, synth_server, capsys):
    run = tmp_path / "ar"
    assert main(["resume", str(run)]) == 2
    assert "holds no autoresearch run" in capsys.readouterr().err
    with FakeOpenAIServer([tool("finish", reason="done")]) as researcher:
        args = ["examples/constant", "--synthesizer-model", "openai/fake", "--synthesizer-base-url",
                synth_server.base_url, "--researcher-model", "openai/fake-r", "--researcher-base-url",
                researcher.base_url, "--replicates", "2", "--budget-evals", "2", "--workers", "2", "--out", str(run)]
        assert main([*args, "--task-option", "heldout_penalty=0.0"]) == 0
    capsys.readouterr()
    assert main(args) == 2  # starting again over a run
    assert f"continue it with `synthloop autoresearch resume {run}`" in capsys.readouterr().err
    assert main(["resume", str(run)]) == 2
    assert "is finished (its final gate ran); nothing to resume" in capsys.readouterr().err
    lock = _lock(run)
    try:
        assert main(["resume", str(run)]) == 2
        assert "in use by another autoresearch process" in capsys.readouterr().err
    finally:
        lock.close()
    assert main(["resume", str(run), "--researcher-jail", "chroot"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'chroot'" in err
    assert (run / "autoresearch_report.md").exists()


def test_run_killed_during_the_final_gate_keeps_the_finished_half(tmp_path):
    release = threading.Event()

    def synth(req: dict) -> str:
        system = next(m["content"] for m in req["messages"] if m["role"] == "system")
        user = next(m["content"] for m in req["messages"] if m["role"] == "user")
        if req.get("seed", 0) >= 10_000 and "BE BOLD" in system and "x = 0.9" in user:
            release.wait(60)  # the gate's incumbent half, second generation: hang until killed
        return synth_responder(req)

    run = tmp_path / "ar"
    log = tmp_path / "session.log"
    script = [tool("write_file", path=PROMPT_FILE, content=BOLD), tool("run_experiment", summary="bold", reason="a"),
              tool("finish", reason="done")]
    with FakeOpenAIServer(synth) as synth_srv, FakeOpenAIServer(script) as res1, open(log, "wb") as out:
        args = ["examples/constant", "--synthesizer-model", "openai/fake-synth", "--synthesizer-base-url",
                synth_srv.base_url, "--researcher-model", "openai/fake-r", "--researcher-base-url", res1.base_url,
                "--replicates", "2", "--budget-evals", "5", "--workers", "2", "--out", str(run)]
        proc = subprocess.Popen([sys.executable, "-c", CLI, *args], stdout=out, stderr=subprocess.STDOUT,
                                cwd=tmp_path, start_new_session=True)
        try:
            wait_for(lambda: any(b.get("seed", 0) >= 10_000 and "x = 0.9" in str(b) and "BE BOLD" in str(b)
                                 for b in synth_srv.bodies), proc, log, "the gate's incumbent half")
        finally:
            kill(proc)
        db = sqlite3.connect(run / "autoresearch.sqlite")
        assert [r[0] for r in db.execute("SELECT role FROM gate")] == ["start"]
        start_row = db.execute("SELECT id, values_json FROM gate").fetchone()
        db.close()
        release.set()
        n_before = len(synth_srv.bodies)
        assert main(["resume", str(run)]) == 0  # no researcher needed: it had finished
        gate_calls = [b for b in synth_srv.bodies[n_before:] if b.get("seed", 0) >= 10_000]
    assert gate_calls and all("BE BOLD" in json.dumps(b) for b in gate_calls)  # only the unfinished half re-ran
    db = sqlite3.connect(run / "autoresearch.sqlite")
    rows = db.execute("SELECT id, role, values_json FROM gate ORDER BY id").fetchall()
    assert [r[1] for r in rows] == ["start", "incumbent"] and rows[0][::2] == start_row
    assert db.execute("SELECT COUNT(*) FROM llm_calls WHERE experiment=-1").fetchone()[0] == 3  # start, lost, redo
    meta = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}
    assert meta["gate"]["status"] == "beats" and meta["stop_reason"].startswith("researcher finished")
    assert [s["kind"] for s in meta["sessions"]] == ["start", "resume"]
    assert sorted(p.name for p in (run / "inner" / "interrupted").iterdir()) == ["gate_incumbent_r0",
                                                                                 "gate_incumbent_r1"]
    md = (run / "autoresearch_report.md").read_text()
    assert "session 2 (resume): final gate only" in md and "beats the start on held-out" in md
