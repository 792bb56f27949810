"""The offline default on a kernel task: with no model configured, ``synthloop run kernels/...`` falls back to
``mutate``, whose C variant perturbs the kernel's tunables; the children are compiled and evaluated like a
model's (before the C variant and the parent hand-off, every child was "No code block found").

Real CLI in a subprocess, real compiler and sandbox; heat2d on one small size, one thread. Whether a child
is faster is a measurement, so it is not asserted here; that children compile and are evaluated is.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from synthloop.tasks.kernels.catalog import get_task


def test_offline_kernel_run_evaluates_mutated_children(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "SYNTHLOOP_MODEL"}
    env["OLLAMA_HOST"] = "127.0.0.1:9"  # nothing listens there: the fallback is mutate
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "synthloop.cli", "run", "kernels/heat2d", "--backend", "cpu", "--iterations", "2",
           "--out", str(out), "-q", "--json", "--sizes", "[128^2x50]", "--warmup", "1", "--measure", "2",
           "--variants", "1", "--threads", "1", "--duel-pairs", "2", "--gate-pairs", "2",
           # timings stay out of validity (see test_search_run.py): a ceiling measured under load is low
           "--set", "task_options.implausible_blocks=false"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "model: mutate" in proc.stderr  # the fallback is announced
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed" and summary["synthesizer"]["kind"] == "baseline"

    con = sqlite3.connect(out / "run.sqlite")
    answers = [r[0] for r in con.execute("SELECT response_text FROM llm_calls ORDER BY id")]
    rows = list(con.execute("SELECT id, generation, content, note FROM candidates ORDER BY id"))
    feedback = {cid: kind for cid, kind in
                con.execute("SELECT candidate_id, error_kind FROM evaluations WHERE pool='feedback'")}
    con.close()
    assert answers and all(a.startswith("mutate baseline (no LLM) changed:") and "```c\n" in a for a in answers)
    seed = get_task("heat2d").seed_source("cpu")
    children = [(cid, content, note) for cid, gen, content, note in rows if gen > 0]
    assert len(children) == 2
    assert not any("No code block" in (note or "") for _, _, note in children)
    evaluated = [cid for cid, content, _ in children
                 if content and content != seed and cid in feedback
                 and feedback[cid] not in ("compile", "static_check")]
    assert evaluated, (children, feedback)  # at least one mutated child compiled and was evaluated
