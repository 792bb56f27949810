"""The safety tasks end to end: prepare_run + execute_run against a fake OpenAI server playing a scripted agent."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from safety_scripted import SCRIPTS, db_rows, requests, round_evals, scripted_agent

from synthloop.cli import task_flags
from synthloop.config import build_config
from synthloop.core.types import Artifact, Case
from synthloop.runner import execute_run, prepare_run
from synthloop.tasks.registry import make_task, task_names
from synthloop.tasks.safety.envs import env_ids
from synthloop.tasks.safety.methods import METHODS
from synthloop.tasks.safety.task import SafetyOptions
from synthloop.testing.fake_llm import FakeReply

REFLECT = "You are an expert at analysing"


def _raise_call_budget(run_dir, calls: int = 100) -> None:
    """What a user does before `synthloop resume` after a budget stop: raise the budget in config.yaml."""
    data = yaml.safe_load((run_dir / "config.yaml").read_text())
    data["config"]["budget"]["max_llm_calls"] = calls
    (run_dir / "config.yaml").write_text(yaml.safe_dump(data))


def _reflections(run_dir) -> list[str]:
    return [r["messages"][1]["content"] for r in requests(run_dir) if r["messages"][0]["content"].startswith(REFLECT)]


def test_every_environment_is_a_registered_task_and_cli_flags_map_to_options():
    assert {f"safety/{e}" for e in env_ids()} <= set(task_names())
    assert set(SafetyOptions.model_fields["method"].annotation.__args__) == set(METHODS)
    flags = task_flags("safety/boat_race", ["--method", "epo_safe", "--rounds", "3", "--episodes", "5",
                                            "--false-positive-rate", "0.5", "--faithful"])
    task = make_task("safety/boat_race", flags)
    assert task.options.false_positive_rate == 0.5 and task.options.faithful and task.language == "text"
    pools = task.pools()
    train = {c.params["seed"] for c in pools.feedback}
    assert len(pools.feedback) == 15 and train == {42 + 100 * r + e for r in range(3) for e in range(5)}
    assert not train & {c.params["seed"] for c in pools.heldout}
    assert "20 steps" in task.brief() and "false-positive rate 0.5" in task.brief()
    with pytest.raises(NotImplementedError, match="owns its loop"):
        task.run(Artifact("x", "text"), Case("c", "feedback"))


def test_epo_safe_reaches_r_star_equal_r_once_the_reflection_adds_the_rule(harness):
    h = harness("side_effects")
    run_dir = h.run("side_effects", method="epo_safe")
    rows = round_evals(run_dir)
    curve = [(r["score"], json.loads(r["private"])["mean_performance"]) for r in rows]
    assert curve == [(45.0, 35.0), (43.0, 43.0), (43.0, 43.0)]  # R* = R from the round after the rule
    rule = SCRIPTS["side_effects"][0]
    assert rule not in rows[0]["content"] and rule in rows[1]["content"]
    first = json.loads(rows[0]["channels"])["danger"]
    assert first["summary"]["true_violations"] == 3 and first["granularity"] == "step" and first["shown"]
    safety = json.loads(db_rows(run_dir, "SELECT value FROM meta WHERE key='safety'")[0][0])
    assert safety["variant"] == {"faithful": False, "episode_feedback_leaks_step_indices": False}
    gate = json.loads(db_rows(run_dir, "SELECT value FROM meta WHERE key='gate'")[0][0])
    assert {r["role"] for r in gate["rows"]} == {"best", "final"} and gate["status"] == "passed"
    held = {r["generation"]: json.loads(r["private"])["mean_performance"] for r in round_evals(run_dir, "heldout")}
    assert held == {0: 35.0, 2: 43.0}  # R* of the best-by-R (unsafe) and the final (safe) σ, side by side
    # every call has its own address; held-out calls live far from the rounds
    addrs = [tuple(r) for r in db_rows(run_dir, "SELECT generation, slot, attempt FROM llm_calls")]
    assert len(addrs) == len(set(addrs)) == 16 and (1_000_002, 1, 0) in addrs


@pytest.mark.parametrize("method", list(METHODS))
def test_no_recorded_prompt_contains_r_star_and_the_score_is_mean_r(harness, method):
    h = harness("side_effects")
    run_dir = h.run("side_effects", method=method, rounds=2, episodes=2, false_positive_rate=0.2)
    evals = round_evals(run_dir) + round_evals(run_dir, "heldout")
    rewards, hidden = set(), set()
    for r in evals:
        private, metrics = json.loads(r["private"]), json.loads(r["metrics"])
        assert r["score"] == metrics["mean_reward"]  # the score is mean R ...
        cases = json.loads(r["cases"])
        rewards |= {f"{c['score']:.1f}" for c in cases}
        hidden |= {f"{v:.1f}" for v in private["performance"]} | {f"{private['mean_performance']:.1f}"}
        assert private["mean_performance"] != r["score"] or "performance" not in metrics  # ... never R*
    forbidden = hidden - rewards
    assert "35.0" in forbidden  # the unsafe plan's R* (its R is 45) must be among the values checked
    for req in requests(run_dir):
        text = json.dumps(req["messages"], ensure_ascii=False)
        for value in forbidden:
            assert not re.search(rf"(?<![\d.]){re.escape(value)}(?!\d)", text), (method, value)
            assert not re.search(rf"(?<![\d.]){re.escape(value[:-2])}(?![\d.])", text), (method, value)
        assert "R*" not in text and "performance" not in text.lower()


def test_reward_only_never_sees_a_warning_and_episode_level_never_sees_a_step_index(harness):
    h = harness("side_effects")
    blind = h.run("side_effects", method="reward_only", rounds=2, episodes=2, false_positive_rate=0.5)
    texts = _reflections(blind)
    assert len(texts) == 2
    assert all("Safety warning" not in t and "\u26a0" not in t and "noisy" not in t for t in texts)
    assert all(json.loads(r["channels"])["danger"]["shown"] is False for r in round_evals(blind))
    assert json.loads(round_evals(blind)[0]["channels"])["danger"]["summary"]["true_violations"] == 2
    coarse = h.run("side_effects", method="epo_safe_episode", rounds=2, episodes=2, false_positive_rate=0.5)
    texts = _reflections(coarse)
    assert "At least one safety warning" in texts[0] and "noisy" in texts[0]
    assert not any(re.search(r"\bsteps? \d", t, re.IGNORECASE) for t in texts)
    assert json.loads(round_evals(coarse)[0]["channels"])["danger"]["granularity"] == "episode"


def test_noise_statistics_match_the_rate_and_truth_is_kept_apart(harness):
    h = harness("boat_race")
    clean = h.run("boat_race", method="static", rounds=2, episodes=5, heldout_episodes=0)
    noisy = h.run("boat_race", method="static", rounds=2, episodes=5, heldout_episodes=0, false_positive_rate=0.3)
    spurious = clean_steps = 0
    for a, b in zip(round_evals(clean), round_evals(noisy), strict=True):
        ca, cb = json.loads(a["channels"])["danger"], json.loads(b["channels"])["danger"]
        assert [s["true_steps"] for s in ca["signals"]] == [s["true_steps"] for s in cb["signals"]]
        assert ca["summary"]["spurious_warnings"] == 0 and a["score"] == b["score"]
        for s in cb["signals"]:
            assert set(s["true_steps"]) <= set(s["reported_steps"])  # no false negatives
            spurious += len(set(s["reported_steps"]) - set(s["true_steps"]))
            clean_steps += s["steps"] - len(s["true_steps"])
        assert cb["false_positive_rate"] == 0.3
    assert clean_steps == 100  # (Right, Left) x 10: every Left is a true violation, every Right is clean
    assert abs(spurious / clean_steps - 0.3) < 0.1


def test_budget_stop_then_resume_continues_without_repeating_calls(harness, tmp_path):
    h = harness("side_effects")
    whole = h.run("side_effects", method="epo_safe", rounds=2, episodes=3)
    n_whole = len(h.server.bodies)
    h.server.clear()
    cfg = h.config("side_effects", out=tmp_path / "resumed", budget={"max_llm_calls": 5}, method="epo_safe",
                   rounds=2, episodes=3)
    run_dir = prepare_run(build_config(cfg), announce=lambda s: None)
    first = execute_run(run_dir)
    assert first["status"].startswith("stopped") and len(h.server.bodies) == 5
    assert [r["generation"] for r in db_rows(run_dir, "SELECT generation FROM candidates")] == [0]
    _raise_call_budget(run_dir)
    second = execute_run(run_dir)
    assert second["status"] == "completed"
    assert len(h.server.bodies) == n_whole  # the 5 recorded calls were reused, none repeated
    addrs = [tuple(r) for r in db_rows(run_dir, "SELECT generation, slot, attempt FROM llm_calls")]
    assert len(addrs) == len(set(addrs)) == n_whole
    same = "SELECT generation, content FROM candidates ORDER BY generation"
    assert [tuple(r) for r in db_rows(run_dir, same)] == [tuple(r) for r in db_rows(whole, same)]
    assert [r["score"] for r in round_evals(run_dir)] == [r["score"] for r in round_evals(whole)]


def test_a_failed_call_in_a_recorded_round_is_replayed_not_retried(harness, tmp_path):
    agent = scripted_agent("side_effects")
    calls = {"n": 0}

    def flaky(payload):
        calls["n"] += 1  # the second acting call of round 0 fails: a seeded random plan replaces it
        return FakeReply.error(400) if calls["n"] == 2 else agent(payload)

    h = harness("side_effects", flaky)
    cfg = h.config("side_effects", out=tmp_path / "flaky", budget={"max_llm_calls": 6}, rounds=2, episodes=3)
    run_dir = prepare_run(build_config(cfg), announce=lambda s: None)
    execute_run(run_dir)
    errors = db_rows(run_dir, "SELECT generation, slot FROM llm_calls WHERE error IS NOT NULL")
    assert [tuple(r) for r in errors] == [(0, 2)]
    before = calls["n"]
    _raise_call_budget(run_dir)
    assert execute_run(run_dir)["status"] == "completed" and calls["n"] > before
    round0 = [tuple(r) for r in db_rows(run_dir, "SELECT generation, slot FROM llm_calls WHERE generation=0")]
    assert round0.count((0, 2)) == 1  # round 0 is recorded, so its failure is replayed, not retried
    diagnostics = json.loads(round_evals(run_dir)[0]["cases"])[1]["diagnostics"]
    assert any("synthesizer error: bad_request" in d for d in diagnostics)
