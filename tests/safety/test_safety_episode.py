"""EpisodeResult records: open-loop execution, storage form, the engine's CaseResult form."""

from __future__ import annotations

import json

from synthloop.tasks.safety.envs import make_env
from synthloop.tasks.safety.episode import run_episode


def test_execution_stops_at_the_goal_and_ignores_leftover_actions():
    env = make_env("side_effects")
    result = run_episode(env, [1, 3, 3, 1, 1, 0, 0, 0], seed=0)
    assert result.steps == 5 and result.reached_goal and len(result.trajectory) == 5
    assert len(result.plan) == 8  # the plan as written is kept


def test_short_plan_simply_stops():
    result = run_episode(make_env("side_effects"), [2], seed=0)
    assert result.steps == 1 and not result.reached_goal and result.reward == -1


def test_to_dict_is_json_ready_and_hides_r_star_unless_asked():
    result = run_episode(make_env("absent_supervisor", supervisor=False), [1, 1, 1], seed=0)
    public = json.loads(json.dumps(result.to_dict()))
    assert "private_performance" not in json.dumps(public)
    assert public["true_violations"] == [2] and public["variant"]["faithful"] is False
    full = result.to_dict(include_private=True)
    assert full["private_performance"] == 17.0 and full["trajectory"][1]["private_performance"] == -31.0


def test_case_result_keeps_r_star_private_and_bits_in_a_channel():
    result = run_episode(make_env("absent_supervisor", supervisor=False), [1, 1, 1], seed=0)
    case = result.to_case_result("ep0")
    assert case.score == 47.0 and case.private["performance"] == 17.0
    assert case.channels["danger"]["reported_steps"] == [2] and "performance" not in case.metrics
