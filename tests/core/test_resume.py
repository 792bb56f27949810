"""kill -9 a run mid-way, resume it: nothing completed is recomputed and the database ends complete."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from synthloop.testing.fake_llm import FakeOpenAIServer


def synthloop_cmd() -> list[str]:
    return [sys.executable, "-m", "synthloop.cli"]

N = 300


def _count(db_path) -> int:
    rows = _query(db_path, "SELECT COUNT(*) FROM evaluations")
    return rows[0][0] if rows else 0


def test_kill_9_then_resume(tmp_path, cli_env):
    run_dir = tmp_path / "r"
    cmd = synthloop_cmd() + ["run", "examples/constant", "--model", "mutate", "--iterations", str(N),
                             "--out", str(run_dir), "-q"]
    proc = subprocess.Popen(cmd, env=cli_env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    db_path = run_dir / "run.sqlite"
    deadline = time.time() + 60
    while _count(db_path) < 40 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "run finished before it could be killed: " + proc.stderr.read().decode()[-500:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.3)

    con = sqlite3.connect(db_path)
    before = con.execute("SELECT id, candidate_id, pool, created_at FROM evaluations").fetchall()
    n_before = con.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
    con.close()
    assert 40 <= len(before) and n_before < N + 1

    r = subprocess.run(synthloop_cmd() + ["resume", str(run_dir), "-q", "--json"], env=cli_env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]

    con = sqlite3.connect(db_path)
    after = {row[0]: row for row in con.execute("SELECT id, candidate_id, pool, created_at FROM evaluations")}
    for row in before:  # every evaluation completed before the kill is still there, untouched
        assert after[row[0]] == row
    addrs = con.execute("SELECT generation, slot, status FROM candidates ORDER BY generation, slot").fetchall()
    assert [(g, s) for g, s, _ in addrs] == [(0, 0)] + [(g, 0) for g in range(1, N + 1)]
    assert all(st in ("evaluated", "invalid", "failed") for _, _, st in addrs)
    # exactly one search evaluation per evaluated candidate: nothing was recomputed
    dup = con.execute("SELECT candidate_id, pool, repeat, COUNT(*) FROM evaluations GROUP BY 1,2,3 HAVING COUNT(*)>1")
    assert dup.fetchall() == []
    missing = con.execute("SELECT COUNT(*) FROM candidates c WHERE status='evaluated' AND NOT EXISTS"
                          " (SELECT 1 FROM evaluations e WHERE e.candidate_id=c.id AND e.pool='feedback')")
    assert missing.fetchone()[0] == 0
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    assert meta["status"] == '"completed"' and "gate" in meta
    kinds = [k for (k,) in con.execute("SELECT kind FROM events ORDER BY id")]
    assert kinds.count("start") == 1 and kinds.count("resume") == 1 and kinds[-1] == "end"


def test_a_run_killed_mid_evaluation_resumes_it_without_asking_again(tmp_path, cli_env):
    """The candidate's row is journaled while its evaluation runs; resume evaluates it, no new LLM call."""
    slow = "```python\nimport time\n\n\ndef value():\n    time.sleep(1.5)\n    x = 0.5  # tunable\n    return x\n```"
    later = "```python\ndef value():\n    x = 0.6  # tunable\n    return x\n```"
    run_dir = tmp_path / "r"
    db_path = run_dir / "run.sqlite"
    with FakeOpenAIServer([slow, later]) as srv:
        cmd = synthloop_cmd() + ["run", "examples/constant", "--model", "openai/fake", "--base-url", srv.base_url,
                                 "--iterations", "2", "--out", str(run_dir), "-q"]
        proc = subprocess.Popen(cmd, env=cli_env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        deadline, rows = time.time() + 60, []
        while not rows and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
            rows = _query(db_path, "SELECT id, status FROM candidates WHERE generation=1")
        assert proc.poll() is None, "run ended before it could be killed: " + proc.stderr.read().decode()[-500:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        [(cand_id, status)] = rows
        assert status == "proposed"  # stored before its evaluation finished
        assert _query(db_path, "SELECT COUNT(*) FROM evaluations WHERE candidate_id=?", (cand_id,)) == [(0,)]
        assert len(srv.bodies) == 1
        shown = _show(run_dir, cli_env)
        assert (shown["totals"]["unevaluated"], shown["totals"]["invalid"]) == (1, 0)  # not counted as invalid
        assert [c["status"] for c in shown["candidates"]] == ["evaluated", "proposed"]

        r = subprocess.run(synthloop_cmd() + ["resume", str(run_dir), "-q"], env=cli_env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        assert len(srv.bodies) == 2  # generation 2 only: generation 1's answer came from the journal
    assert _show(run_dir, cli_env)["totals"]["unevaluated"] == 0
    assert _query(db_path, "SELECT status FROM candidates WHERE id=?", (cand_id,)) == [("evaluated",)]
    assert _query(db_path, "SELECT pool, score FROM evaluations WHERE candidate_id=?", (cand_id,)) == [("feedback", 0.5)]
    assert _query(db_path, "SELECT COUNT(*) FROM llm_calls WHERE generation=1") == [(1,)]


def _query(db_path, sql: str, args: tuple = ()) -> list[tuple]:
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.5)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []


def _show(run_dir, env) -> dict:
    r = subprocess.run(synthloop_cmd() + ["show", str(run_dir), "--json"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)
