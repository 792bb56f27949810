"""ssd/gathering end to end: scripted answers from a fake OpenAI-compatible server, real sandboxed executor.

Pins down: dense prompts carry the metric values and sparse ones do not; the held-out pool is scored
once per finalist and never reaches a prompt; best-so-far and final are both tracked and gated; an
answer rejected by the validator is retried with its code and the error; a policy that crashes during
evaluation is scored as a failure and fed back with its code and the policy traceback.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from synthloop.config import build_config
from synthloop.runner import execute_run, prepare_run
from synthloop.testing.fake_llm import FakeOpenAIServer

BFS = '''def policy(state, agent_id):
    if state.agent_timeout[agent_id] > 0:
        return STAND
    step = bfs_nearest_apple(state, agent_id)
    if step is None:
        return STAND
    return direction_to_action(step[0], step[1], int(state.agent_orient[agent_id]))
'''
BAD_IMPORT = "import os\n\n" + BFS
CRASH = BFS.replace("    step = bfs", "    if state.step == 2:\n        boom = 1 // 0\n    step = bfs")
BANDS = '''def policy(state, agent_id):
    if state.agent_timeout[agent_id] > 0:
        return STAND
    band = state.memory.get("band")
    if band is None:
        cols = sorted(set(int(c) for c in state.apple_pos[:, 1]))
        k = max(1, len(cols) // len(state.team))
        i = state.team.index(agent_id)
        band = set(cols[i * k:(i + 1) * k]) or set(cols)
        state.memory["band"] = band
    cells = [tuple(p) for p, a in zip(state.apple_pos.tolist(), state.apple_alive) if a and p[1] in band]
    step = bfs_to_target_set(state, agent_id, cells) if cells else bfs_nearest_apple(state, agent_id)
    if step is None:
        return STAND
    return direction_to_action(step[0], step[1], int(state.agent_orient[agent_id]))
'''
STAND_ONLY = "def policy(state, agent_id):\n    return STAND\n"
HELDOUT_SEED = 7777


def _answer(code: str) -> str:
    return f"Design: see code.\n\n```python\n{code}```\n"


def _run(tmp_path: Path, mode: str) -> tuple[Path, dict[str, Any]]:
    replies = [_answer(c) for c in (BFS, BAD_IMPORT, CRASH, BANDS, STAND_ONLY)]
    with FakeOpenAIServer(replies) as srv:
        data = {
            "task": "ssd/gathering",
            "task_options": {"agents": 4, "steps": 80, "map": "small", "feedback_seeds": [0, 1],
                             "selection_seeds": [5], "heldout_seeds": [HELDOUT_SEED], "episode_wall_s": 30},
            "feedback": {"mode": mode},
            "llm": {"model": "openai/fake", "base_url": srv.base_url, "backoff_base_s": 0.01, "max_attempts": 1},
            "search": {"strategy": "refine", "iterations": 3, "diffs": False},
            "execution": {"workers": 3},
            "out": str(tmp_path / mode),
        }
        run_dir = prepare_run(build_config(data), announce=lambda s: None)
        summary = execute_run(run_dir)
    return run_dir, summary


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-ssd")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", "sk-test-ssd")
    try:
        base = tmp_path_factory.mktemp("ssdrun")
        return {m: _run(base, m) for m in ("dense", "sparse")}
    finally:
        mp.undo()


def _requests(run_dir: Path) -> list[list[dict[str, str]]]:
    con = sqlite3.connect(run_dir / "run.sqlite")
    rows = [json.loads(r[0])["messages"] for r in con.execute("SELECT request FROM llm_calls ORDER BY id")]
    con.close()
    return rows


def _user_text(msgs: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in msgs if m["role"] == "user")


def test_dense_prompt_shows_metric_values_and_sparse_does_not(runs: dict) -> None:
    dense_dir, dense = runs["dense"]
    sparse_dir, _ = runs["sparse"]
    first = dense["candidates"][0]
    eff = first["metrics"]["efficiency"]
    dense_p = _user_text(_requests(dense_dir)[1])
    sparse_p = _user_text(_requests(sparse_dir)[1])
    assert "efficiency:" in dense_p and f"{eff:.6g}" in dense_p and "equality:" in dense_p
    assert "peace:" in dense_p and "higher is better" in dense_p
    assert "reward:" in sparse_p
    for word in ("efficiency", "equality", "sustainability", "peace:"):
        assert word not in sparse_p


def test_heldout_scored_once_and_never_prompted(runs: dict) -> None:
    for run_dir, summary in runs.values():
        con = sqlite3.connect(run_dir / "run.sqlite")
        held = [r[0] for r in con.execute("SELECT candidate_id FROM evaluations WHERE pool='heldout'")]
        con.close()
        assert held and len(held) == len(set(held))
        finalists = {r["candidate"] for r in summary["gate"]["rows"]}
        assert set(held) == finalists
        for msgs in _requests(run_dir):
            text = json.dumps(msgs)
            assert str(HELDOUT_SEED) not in text and "ho-s" not in text


def test_best_and_final_are_both_tracked_and_gated(runs: dict) -> None:
    _, summary = runs["dense"]
    cands = summary["candidates"]
    by_gen = {c["generation"]: c for c in cands}
    assert summary["final"]["id"] == by_gen[3]["id"]
    scored = [c for c in cands if c["selection_score"] is not None]
    top = max(c["selection_score"] for c in scored)
    assert summary["best"]["id"] == min(c["id"] for c in scored if c["selection_score"] == top)
    assert summary["best"]["id"] != summary["final"]["id"] and by_gen[3]["selection_score"] == 0.0
    roles = {r["role"] for r in summary["gate"]["rows"]}
    assert {"best", "final"} <= roles
    for row in summary["gate"]["rows"]:
        assert row["in_distribution"] is not None and row["heldout"] is not None


def test_validator_retry_and_crash_feedback_show_code_and_traceback(runs: dict) -> None:
    run_dir, summary = runs["dense"]
    reqs = _requests(run_dir)
    retry = reqs[2][-1]["content"]  # the re-ask after the import was rejected
    assert "imports are not available" in retry and "import os" in retry
    crashed = [c for c in summary["candidates"] if c["generation"] == 1][0]
    assert not crashed["valid"] and "policy_exception" in crashed["error_kind"]
    nxt = _user_text(reqs[3])  # the prompt after the crash shows the failing code and its traceback
    assert "boom = 1 // 0" in nxt and "ZeroDivisionError" in nxt and "Traceback (policy code)" in nxt


def test_table_has_cells_roles_and_baselines_in_both_protocols(runs: dict, tmp_path: Path) -> None:
    import io

    from synthloop.tasks.ssd.table import table

    buf = io.StringIO()
    rows = table([p for p, _ in runs.values()], tmp_path / "t.csv", out=buf)
    llm = [r for r in rows if r["method"].startswith("LLM")]
    assert {(r["feedback"], r["role"]) for r in llm} == {(m, role) for m in ("dense", "sparse")
                                                          for role in ("final", "best")}
    base = {(r["method"], r["protocol"]) for r in rows if r["method"].startswith("baseline")}
    assert ("baseline bfs", "self-play") in base and ("baseline bfs", "reference-mixed") in base
    assert "U (eff.)" in buf.getvalue() and (tmp_path / "t.csv").read_text().startswith("game,method")


def test_report_is_self_contained_with_curves_diff_verdicts_and_animation(runs: dict, tmp_path: Path) -> None:
    from synthloop.tasks.ssd.report import report

    run_dir, _ = runs["dense"]
    (path,) = report(run_dir, tmp_path)
    page = path.read_text()
    assert "<svg" in page and "data:image/gif;base64," in page and "In-distribution vs held-out" in page
    assert "boom = 1 // 0" in page and "integrity flags" in page and "Tokens and cost" in page
    assert "src=\"http" not in page and "src='http" not in page
