"""The engine end to end: real OpenAI SDK against a fake server on 127.0.0.1, real sandboxed executor,
real SQLite store. Each test pins down one behaviour of a run."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from synthloop.config import build_config
from synthloop.runner import execute_run, prepare_run
from synthloop.testing.fake_llm import FakeOpenAIServer, FakeReply

VALUE = re.compile(r"x = ([0-9.]+)  # tunable")


def program(x: float, extra: str = "") -> str:
    return f"```python\ndef value():\n    x = {x}  # tunable\n    return x\n{extra}```"


def run(tmp_path, server, name="run", **over):
    data = {
        "task": "examples/constant",
        "llm": {"model": "openai/fake", "base_url": server.base_url, "backoff_base_s": 0.01, "max_attempts": 2},
        "search": {"strategy": "refine", "iterations": 3},
        "out": str(tmp_path / name),
    }
    for k, v in over.items():
        node = data
        *head, last = k.split("__")
        for h in head:
            node = node.setdefault(h, {})
        node[last] = v
    run_dir = prepare_run(build_config(data), announce=lambda s: None)
    return run_dir, execute_run(run_dir)


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-engine-key")


def user_msgs(srv):
    return [next(m["content"] for m in b["messages"] if m["role"] == "user") for b in srv.bodies]


def test_refine_shows_parent_and_full_history(tmp_path):
    with FakeOpenAIServer([program(0.2), program(0.3), program(0.25)]) as srv:
        _, s = run(tmp_path, srv, search__parent="latest")
        prompts = user_msgs(srv)
    assert [c["score"] for c in s["candidates"]] == [0.1, 0.2, 0.3, 0.25]
    assert len(s["iterations"]) == 4  # K+1 generations (seed + 3)
    # third prompt: parent is the latest (0.3), history holds generations 0 and 1 with their feedback
    assert "x = 0.3  # tunable" in prompts[2]
    assert "value: 0.1" in prompts[2] and "value: 0.2" in prompts[2]
    assert s["best"]["score"] == 0.3


def test_refine_parent_best(tmp_path):
    with FakeOpenAIServer([program(0.5), program(0.05), program(0.6)]) as srv:
        _, s = run(tmp_path, srv, search__parent="best")
        prompts = user_msgs(srv)
    assert "x = 0.5  # tunable" in prompts[2]  # 0.05 was worse: the best (0.5) is refined


def test_invalid_answers_are_retried_with_error_and_code_shown(tmp_path):
    replies = ["I cannot help", "```python\ndef value(:\n    return 1\n```", program(0.4)]
    with FakeOpenAIServer(replies) as srv:
        _, s = run(tmp_path, srv, search__iterations=1)
        bodies = srv.bodies
    c = s["candidates"][1]
    assert c["attempts"] == 3 and c["valid"] and c["score"] == 0.4
    second, third = bodies[1]["messages"], bodies[2]["messages"]
    assert second[-2] == {"role": "assistant", "content": "I cannot help"}
    assert "could not be used" in second[-1]["content"]
    assert "SyntaxError" in third[-1]["content"] and "def value(:" in third[-1]["content"]


def test_generation_that_keeps_failing_is_recorded_and_run_goes_on(tmp_path):
    with FakeOpenAIServer(["nothing"] * 3 + [program(0.7)]) as srv:
        _, s = run(tmp_path, srv, search__iterations=2, search__retries=2)
    assert s["candidates"][1]["status"] == "invalid" and not s["candidates"][1]["valid"]
    assert "no code" in " ".join(s["candidates"][1]["diagnostics"]).lower()
    assert s["candidates"][2]["score"] == 0.7
    assert s["status"] == "completed"


def test_llm_failure_recorded_and_run_goes_on(tmp_path):
    replies = [FakeReply.error(500), FakeReply.error(500), program(0.9)]
    with FakeOpenAIServer(replies) as srv:
        run_dir, s = run(tmp_path, srv, search__iterations=2)
    assert s["candidates"][1]["status"] == "failed"
    assert s["candidates"][2]["score"] == 0.9
    db = sqlite3.connect(run_dir / "run.sqlite")
    errors = db.execute("SELECT error FROM llm_calls WHERE error IS NOT NULL").fetchall()
    assert len(errors) == 1 and "server" in errors[0][0]


def test_crashing_candidate_is_feedback_not_an_abort(tmp_path):
    crash = "```python\ndef value():\n    x = 0.5  # tunable\n    return 1 / 0\n```"
    with FakeOpenAIServer([crash, program(0.3)]) as srv:
        _, s = run(tmp_path, srv, search__iterations=2)
        prompts = user_msgs(srv)
    assert s["candidates"][1]["error_kind"] == "exception"
    assert "ZeroDivisionError" in prompts[1]
    assert s["candidates"][2]["score"] == 0.3


def test_heldout_gate_side_by_side_and_flags_drop(tmp_path):
    with FakeOpenAIServer([program(0.8)]) as srv:
        run_dir, s = run(tmp_path, srv, search__iterations=1, task_options={"heldout_penalty": 0.4})
    g = s["gate"]
    assert g["status"] == "flagged"
    row = next(r for r in g["rows"] if r["role"] == "best")
    assert row["in_distribution"] == pytest.approx(0.8) and row["heldout"] == pytest.approx(0.4)
    assert row["flagged"] and row["relative_drop"] == pytest.approx(0.5)
    # the held-out result is stored but never appeared in a prompt
    db = sqlite3.connect(run_dir / "run.sqlite")
    assert db.execute("SELECT COUNT(*) FROM evaluations WHERE pool='heldout'").fetchone()[0] >= 1


def test_gate_passes_without_drop(tmp_path):
    with FakeOpenAIServer([program(0.8)]) as srv:
        _, s = run(tmp_path, srv, search__iterations=1)
    assert s["gate"]["status"] == "passed"


def test_budget_stop_is_clean_and_report_written(tmp_path):
    with FakeOpenAIServer(lambda req: program(0.5)) as srv:
        run_dir, s = run(tmp_path, srv, search__strategy="one_plus_one", search__iterations=50,
                         budget={"max_llm_calls": 4})
        n = len(srv.requests)
    assert n == 4
    assert s["status"].startswith("stopped") and "LLM call budget" in s["stopped"]
    assert (run_dir / "report.json").is_file() and json.loads((run_dir / "report.json").read_text())["best"]
    assert s["gate"]["rows"]  # the gate still ran on what was found


def test_one_plus_one_accepts_only_strict_improvements(tmp_path):
    vals = iter([0.05, 0.3, 0.3, 0.2, 0.6])
    with FakeOpenAIServer(lambda req: program(next(vals))) as srv:
        run_dir, s = run(tmp_path, srv, search__strategy="one_plus_one", search__iterations=5)
        prompts = user_msgs(srv)
    # every child is proposed from the champion at that time
    parents = [float(VALUE.search(p).group(1)) for p in prompts]
    assert parents == [0.1, 0.1, 0.3, 0.3, 0.3]
    db = sqlite3.connect(run_dir / "run.sqlite")
    accepted = [json.loads(d)["candidate"] for (d,) in db.execute("SELECT data FROM events WHERE kind='accept'")]
    assert len(accepted) == 2  # 0.3 (first one only) and 0.6
    assert s["best"]["score"] == 0.6


def test_concurrent_proposals(tmp_path):
    with FakeOpenAIServer(lambda req: FakeReply.slow(0.3, program(0.5))) as srv:
        _, s = run(tmp_path, srv, search__strategy="best_of_n", search__iterations=4, search__concurrency=4)
        ts = sorted(r.t for r in srv.requests)
    assert len(s["candidates"]) == 5
    assert ts[-1] - ts[0] < 0.25  # all four requests were in flight together


def test_replay_reproduces_a_run_offline(tmp_path):
    vals = iter([0.2, 0.35, 0.3])
    with FakeOpenAIServer(lambda req: program(next(vals))) as srv:
        run_dir, s1 = run(tmp_path, srv, name="orig")
    with FakeOpenAIServer([]) as dead:  # replay must not touch any server
        _, s2 = run(tmp_path, dead, name="replayed", llm__model=f"replay:{run_dir}")
        assert not dead.requests
    assert [c["score"] for c in s2["candidates"]] == [c["score"] for c in s1["candidates"]]
    assert s2["synthesizer"]["kind"] == "replay"


def test_private_values_never_reach_a_prompt(tmp_path):
    # the held-out score (0.8 - 0.123 = 0.677) is private; no prompt may contain it
    with FakeOpenAIServer([program(0.8), program(0.81), program(0.82)]) as srv:
        run_dir, _ = run(tmp_path, srv, task_options={"heldout_penalty": 0.123}, search__iterations=3)
    db = sqlite3.connect(run_dir / "run.sqlite")
    prompts = " ".join(r[0] for r in db.execute("SELECT request FROM llm_calls"))
    assert "0.677" not in prompts and "heldout" not in prompts.lower()


def test_smoke_test_crash_is_retried_with_the_error(tmp_path):
    crash = "```python\ndef value():\n    x = 0.5  # tunable\n    raise RuntimeError('kaboom')\n```"
    with FakeOpenAIServer([crash, program(0.45)]) as srv:
        _, s = run(tmp_path, srv, search__iterations=1, search__smoke_test=True)
        bodies = srv.bodies
    c = s["candidates"][1]
    assert c["attempts"] == 2 and c["score"] == 0.45
    retry = bodies[1]["messages"][-1]["content"]
    assert "smoke test" in retry and "kaboom" in retry
