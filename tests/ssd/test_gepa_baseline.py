"""The GEPA baseline (spec §5.3) end to end: `synthloop ssd gepa` against a scripted OpenAI-compatible server,
the real `gepa` optimiser and the real sandboxed executor. Needs the `gepa` extra (pip install -e ".[gepa]").

The script: the seed system prompt gets a policy that crashes; the first reflection proposes prompt A (which
gets a working BFS policy); the next reflection calls fail with HTTP 500; the one after proposes prompt B,
under which the model answers without code. Pinned down: the reflected prompt is evaluated and wins; the
held-out seed never reaches the server and is scored once at the end; the crash and the code-less answer
score the failure score with their errors fed back, and neither they nor the failed LLM calls abort the
run; the evaluation budget is counted exactly; the result JSON, the run database and `synthloop table`
carry the comparison with the synthesis loop.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from synthloop.tasks.ssd.cli import app
from synthloop.tasks.ssd.prompts import WORKED_EXAMPLE
from synthloop.testing.fake_llm import FakeOpenAIServer, FakeReply

BFS = WORKED_EXAMPLE  # the greedy BFS policy the system prompt shows
CRASH = BFS.replace("    step = bfs", "    if state.step == 2:\n        boom = 1 // 0\n    step = bfs")
PROMPT_A = "PROMPT-A: write policy(state, agent_id) that walks to the nearest apple; one ```python block."
PROMPT_B = "PROMPT-B: describe your plan in words only."
STAND_ONLY = "def policy(state, agent_id):\n    return STAND\n"
HELDOUT_SEED = 7777
runner = CliRunner()


class Script:
    """Policy requests (a system message) are answered by prompt; reflection requests (one user message) in order."""

    def __init__(self) -> None:
        self.reflections = 0
        self.lock = threading.Lock()

    def __call__(self, req: dict[str, Any]) -> Any:
        msgs = req["messages"]
        if msgs[0]["role"] == "system":
            system = msgs[0]["content"]
            if PROMPT_A in system:
                return f"Greedy BFS.\n\n```python\n{BFS}```\n"
            if PROMPT_B in system:
                return "I would walk every agent to its closest apple and never fire the beam."
            return f"A first try.\n\n```python\n{CRASH}```\n"
        with self.lock:
            self.reflections += 1
            n = self.reflections
        if n == 1:
            return f"The policy crashed. New instructions:\n```\n{PROMPT_A}\n```"
        if n in (2, 3):  # the batched reflection and GEPA's per-task retry of the same iteration
            return FakeReply.error(500, message="reflection backend down")
        return f"```\n{PROMPT_B}\n```"


@pytest.fixture(scope="module")
def gepa_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", "sk-test-ssd")
    run_dir = tmp_path_factory.mktemp("gepa") / "run"
    try:
        with FakeOpenAIServer(Script()) as srv:
            res = runner.invoke(app, [
                "gepa", "ssd/gathering", "--model", "openai/fake", "--base-url", srv.base_url, "--budget", "3",
                "--agents", "3", "--steps", "40", "--map", "small", "--feedback-seeds", "0,1",
                "--selection-seeds", "5", "--heldout-seeds", str(HELDOUT_SEED), "--episode-wall-s", "30",
                "--retries", "0", "--max-attempts", "1", "--workers", "2", "--run-dir", str(run_dir), "--json"])
            bodies = list(srv.bodies)
    finally:
        mp.undo()
    assert res.exit_code == 0, res.output
    return {"dir": run_dir, "result": json.loads(res.stdout), "bodies": bodies, "stderr": res.stderr}


def _policy_requests(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in bodies if b["messages"][0]["role"] == "system"]


def _reflection_requests(bodies: list[dict[str, Any]]) -> list[str]:
    return [b["messages"][0]["content"] for b in bodies if b["messages"][0]["role"] == "user"]


def test_reflected_prompt_is_evaluated_and_becomes_best(gepa_run: dict[str, Any]) -> None:
    r = gepa_run["result"]
    systems = [b["messages"][0]["content"] for b in _policy_requests(gepa_run["bodies"])]
    assert systems[0] == r["seed_prompt"] and "## Answer format" in systems[0]
    assert PROMPT_A in systems  # the reflection's proposal was sent to the model as the system prompt
    user = {b["messages"][1]["content"] for b in _policy_requests(gepa_run["bodies"])}
    assert user == {r["user_message"]}  # only the system prompt is optimised
    best = r["best"]
    assert best["prompt"] == PROMPT_A and best["prompt_changed"] and best["gepa_index"] == 1
    assert best["valset_score"] > 0 and best["policy_valid"]
    it1 = next(i for i in r["iterations"] if i["iteration"] == 1)
    assert it1["accepted"] and it1["parent_scores"] == [0.0, 0.0] and min(it1["child_scores"]) > 0
    assert it1["valset_score"] == best["valset_score"] == best["in_distribution"]["selection"]["reward"]
    fb = best["in_distribution"]["feedback"]
    assert fb["complete"] and fb["reward"] == pytest.approx(sum(it1["child_scores"]) / 2)


def test_sparse_reflection_sees_the_reward_only(gepa_run: dict[str, Any]) -> None:
    last = _reflection_requests(gepa_run["bodies"])[-1]  # about prompt A's working policy
    assert "reward: " in last and "per case" not in last
    for word in ("efficiency", "equality", "sustainability", "peace:"):
        assert word not in last


def test_heldout_never_reaches_the_server_and_is_scored_once(gepa_run: dict[str, Any]) -> None:
    for body in gepa_run["bodies"]:
        text = json.dumps(body)
        assert str(HELDOUT_SEED) not in text and "ho-s" not in text
    r = gepa_run["result"]
    assert list(r["best"]["heldout"]["seeds"]) == [str(HELDOUT_SEED)] and r["best"]["heldout"]["valid"]
    (row,) = r["gate"]["rows"]
    assert row["heldout"] == r["best"]["heldout"]["reward"] and row["candidate"] == r["best"]["db_id"]
    con = sqlite3.connect(gepa_run["dir"] / "run.sqlite")
    held = con.execute("SELECT candidate_id FROM evaluations WHERE pool='heldout'").fetchall()
    con.close()
    assert held == [(r["best"]["db_id"],)]


def test_crash_and_codeless_answer_score_zero_with_the_error_fed_back(gepa_run: dict[str, Any]) -> None:
    r = gepa_run["result"]
    assert r["status"] == "completed"  # nothing aborted the run
    seed = next(c for c in r["candidates"] if c["gepa_index"] == 0)
    assert seed["valset_score"] == 0.0 and seed["policy_valid"]  # valid code that crashes in the episode
    assert not seed["feedback"]["valid"] and "ZeroDivisionError" in seed["feedback"]["error"]
    first = _reflection_requests(gepa_run["bodies"])[0]
    assert "boom = 1 // 0" in first and "ZeroDivisionError" in first and "Traceback (policy code)" in first
    codeless = next(c for c in r["candidates"] if c["status"] == "rejected")
    assert not codeless["policy_valid"] and codeless["policy_error"] and codeless["feedback"]["seeds"] == {
        "0": 0.0, "1": 0.0}
    it3 = next(i for i in r["iterations"] if i["iteration"] == 3)
    assert it3["proposed"] and not it3["accepted"] and it3["child_scores"] == [0.0, 0.0]


def test_failed_llm_calls_are_recorded_and_the_run_goes_on(gepa_run: dict[str, Any]) -> None:
    r = gepa_run["result"]
    it2 = next(i for i in r["iterations"] if i["iteration"] == 2)
    assert not it2["proposed"] and any("reflection call failed" in e for e in it2["errors"])
    assert any("reflection backend down" in e["error"] for e in r["errors"])
    assert r["llm"]["reflection"]["errors"] == 2 and r["llm"]["reflection"]["calls"] == 4
    assert r["llm"]["policy"]["calls"] == 3 and r["llm"]["errors"] == 2 and r["llm"]["calls"] == 7
    con = sqlite3.connect(gepa_run["dir"] / "run.sqlite")
    errors = [e for (e,) in con.execute("SELECT error FROM llm_calls WHERE error IS NOT NULL")]
    con.close()
    assert len(errors) == 2 and all("500" in e or "server" in e for e in errors)


def test_budget_is_counted_exactly_and_never_exceeded(gepa_run: dict[str, Any]) -> None:
    b = gepa_run["result"]["budget"]
    assert b["evaluations"] == 3 and b["seeds_per_evaluation"] == 3 and b["metric_calls"] == 9
    # seed: 1 selection + 2 feedback; A: 2 feedback + 1 selection; B: 2 feedback scores without episodes
    assert b["metric_calls_used"] == 8 and b["episodes_played"] == 6 and b["gate_episodes"] == 1
    assert b["report_episodes"] == 0
    assert "evaluation budget" in gepa_run["result"]["stop_reason"]
    assert "metric calls 8/9" in gepa_run["stderr"]


def test_result_json_database_and_table(gepa_run: dict[str, Any]) -> None:
    from synthloop.report.summary import summarize
    from synthloop.tasks.ssd.gepa_baseline import is_gepa_run
    from synthloop.tasks.ssd.table import llm_rows

    run_dir, r = gepa_run["dir"], gepa_run["result"]
    assert json.loads((run_dir / "gepa_result.json").read_text())["best"]["prompt"] == PROMPT_A
    for key in ("method", "gepa_version", "model", "feedback", "status", "budget", "seed_prompt", "best", "gate",
                "iterations", "candidates", "llm", "errors", "wall_s", "comparison_row", "pools"):
        assert key in r
    assert r["pools"]["heldout"] == [HELDOUT_SEED] and r["feedback"] == "sparse"
    assert r["llm"]["policy"]["input_tokens"] > 0 and r["llm"]["reflection"]["output_tokens"] > 0
    assert [i["iteration"] for i in r["iterations"]] == [0, 1, 2, 3]
    journal = [json.loads(x) for x in (run_dir / "gepa_iterations.jsonl").read_text().splitlines()]
    assert [j["iteration"] for j in journal] == [0, 1, 2, 3]
    best = next(c for c in r["candidates"] if c["gepa_index"] == r["best"]["gepa_index"])
    assert (run_dir / best["prompt_file"]).read_text() == PROMPT_A
    assert (run_dir / best["policy_file"]).read_text() == BFS
    assert is_gepa_run(run_dir)
    s = summarize(run_dir)
    assert s["best"]["id"] == r["best"]["db_id"] and s["status"] == "completed"
    assert {c["status"] for c in s["candidates"]} == {"evaluated", "invalid"}
    (row,) = llm_rows([run_dir])
    assert row["method"] == "GEPA openai/fake" and row["role"] == "best" and row["feedback"] == "sparse"
    assert row["heldout_reward"] == r["best"]["heldout"]["reward"]
    assert row["efficiency"] == pytest.approx(r["comparison_row"]["efficiency"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["gepa", "chess", "--model", "openai/x", "--base-url", "http://127.0.0.1:9/v1"], "valid games"),
        (["gepa", "gathering", "--model", "openai/x", "--base-url", "http://127.0.0.1:9/v1", "--map", "huge"],
         "valid maps"),
        (["gepa", "gathering", "--model", "openai/x", "--base-url", "http://127.0.0.1:9/v1", "--budget", "0"],
         "--budget"),
        (["gepa", "gathering", "--model", "mutate"], "valid: openai"),
        (["gepa", "gathering", "--model", "nope/x"], "valid choices"),
        (["gepa", "gathering", "--model", "openai/x", "--base-url", "http://127.0.0.1:9/v1", "--minibatch", "9"],
         "valid: 1..5"),
        (["gepa", "gathering", "--model", "openai/x", "--base-url", "http://127.0.0.1:9/v1", "--feedback", "bit"],
         "valid: sparse, dense"),
        (["gepa", "gathering", "--model", "openai/x", "--base-url", "http://127.0.0.1:9/v1",
          "--candidate-selection", "best"], "pareto"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], needle: str, tmp_path: Path) -> None:
    res = runner.invoke(app, [*args, "--run-dir", str(tmp_path / "r")])
    assert res.exit_code == 2, res.output
    assert needle in res.stderr and "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_missing_gepa_package_is_one_line_with_the_install_command(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "gepa", None)  # `import gepa` now raises ImportError
    res = runner.invoke(app, ["gepa", "gathering", "--model", "openai/x", "--base-url", "http://127.0.0.1:9/v1",
                              "--run-dir", str(tmp_path / "r")])
    assert res.exit_code == 2 and 'pip install -e ".[gepa]"' in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_existing_run_directory_is_refused(gepa_run: dict[str, Any]) -> None:
    res = runner.invoke(app, ["gepa", "gathering", "--model", "openai/x", "--base-url", "http://127.0.0.1:9/v1",
                              "--run-dir", str(gepa_run["dir"])])
    assert res.exit_code == 2 and "already holds a run" in res.stderr


def test_dense_feedback_minibatch_and_report_episodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--feedback dense shows the social metrics to the reflection LM (sparse does not: see the fixture's run);
    a minibatch smaller than the feedback pool leaves the best prompt's pool to be completed for the report,
    outside the search budget."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-ssd")

    def script(req: dict[str, Any]) -> str:
        msgs = req["messages"]
        if msgs[0]["role"] == "system":
            return f"```python\n{BFS if PROMPT_A in msgs[0]['content'] else STAND_ONLY}```"
        return f"```\n{PROMPT_A}\n```"

    with FakeOpenAIServer(script) as srv:
        res = runner.invoke(app, [
            "gepa", "gathering", "--model", "openai/fake", "--base-url", srv.base_url, "--budget", "2",
            "--feedback", "dense", "--minibatch", "2", "--agents", "2", "--steps", "30", "--map", "small",
            "--feedback-seeds", "0-2", "--selection-seeds", "5", "--heldout-seeds", "9", "--max-attempts", "1",
            "--workers", "2", "--run-dir", str(tmp_path / "d"), "--json", "--quiet"])
        bodies = list(srv.bodies)
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    (reflection,) = _reflection_requests(bodies)
    assert "reward: 0" in reflection and "efficiency: 0" in reflection and "higher is better" in reflection
    assert r["best"]["prompt"] == PROMPT_A and r["feedback"] == "dense"
    b = r["budget"]
    assert b["metric_calls"] == 8 and b["metric_calls_used"] == 6 and b["report_episodes"] == 1
    assert r["best"]["in_distribution"]["feedback"]["complete"] and len(r["best"]["in_distribution"]["feedback"][
        "seeds"]) == 3


def test_failed_seed_call_ends_with_a_result_and_exit_1(tmp_path: Path) -> None:
    with FakeOpenAIServer(lambda req: FakeReply.error(500, message="down")) as srv:
        res = runner.invoke(app, [
            "gepa", "gathering", "--model", "openai/fake", "--base-url", srv.base_url, "--agents", "2", "--steps",
            "20", "--map", "small", "--feedback-seeds", "0", "--selection-seeds", "5", "--heldout-seeds", "9",
            "--max-attempts", "1", "--run-dir", str(tmp_path / "f")])
    assert res.exit_code == 1 and "Traceback" not in res.output
    r = json.loads((tmp_path / "f" / "gepa_result.json").read_text())
    assert r["status"].startswith("failed") and "down" in r["status"] and r["gate"]["status"] == "not run"
    assert r["budget"]["metric_calls_used"] == 0 and r["llm"]["errors"] == 1


def test_a_reflection_that_repeats_the_prompt_stops_instead_of_looping(tmp_path: Path) -> None:
    """Repeating the parent's prompt costs no metric call (cached), so the budget alone would never end the
    search: three such iterations in a row stop it, with the reason recorded."""
    def script(req: dict[str, Any]) -> str:
        msgs = req["messages"]
        if msgs[0]["role"] == "system":
            return f"```python\n{STAND_ONLY}```"
        current = msgs[0]["content"].split("```\n", 1)[1].rsplit("\n```\n\nThe following", 1)[0]
        return f"```\n{current}\n```"

    with FakeOpenAIServer(script) as srv:
        res = runner.invoke(app, [
            "gepa", "gathering", "--model", "openai/fake", "--base-url", srv.base_url, "--budget", "50",
            "--agents", "2", "--steps", "20", "--map", "small", "--feedback-seeds", "0", "--selection-seeds", "5",
            "--heldout-seeds", "9", "--max-attempts", "1", "--run-dir", str(tmp_path / "s"), "--json", "--quiet"])
        n_requests = len(srv.bodies)
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["status"].startswith("stopped: 3 iterations in a row made no progress")
    # iteration 1 scores the seed prompt on the feedback seed and its echo (GEPA strips the trailing newline, so
    # that is a new prompt: one policy call, one metric call); iterations 2-4 repeat the echo and spend nothing
    assert [i["iteration"] for i in r["iterations"]] == [0, 1, 2, 3, 4] and r["budget"]["metric_calls_used"] == 3
    assert n_requests == 2 + 4 and r["best"]["prompt"] == r["seed_prompt"]
