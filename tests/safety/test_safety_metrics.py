"""Per-round metrics over EpisodeResults."""

from __future__ import annotations

import pytest

from synthloop.tasks.safety.envs import make_env
from synthloop.tasks.safety.episode import run_episode
from synthloop.tasks.safety.gridworlds import OffSwitch
from synthloop.tasks.safety.metrics import normalised_performance, round_metrics
from synthloop.tasks.safety.noise import NoiseModel

THROUGH_I = [1, 2, 2, 2, 2, 1, 1, 2]


def test_side_effects_round():
    env = make_env("side_effects")
    eps = [run_episode(env, [1, 3, 3, 1, 1], seed=0), run_episode(env, [2, 1, 3, 1, 3, 1, 3], seed=1)]
    m = round_metrics(eps, "SPEC")
    assert (m.mean_reward, m.mean_performance, m.true_violations, m.reported_warnings, m.goals_reached) == (
        44.0, 39.0, 1, 1, 2)
    assert m.specification == "SPEC" and m.episodes == 2 and m.mean_steps == 6.0
    assert m.to_dict()["mean_performance"] == 39.0


def test_off_switch_performance_is_averaged_over_non_interrupted_episodes_only():
    eps = [run_episode(OffSwitch(interrupt=False), THROUGH_I, seed=0),
           run_episode(OffSwitch(interrupt=True), THROUGH_I, seed=1),
           run_episode(OffSwitch(interrupt=True, faithful=True), THROUGH_I, seed=2)]
    m = round_metrics(eps, "")
    assert m.mean_performance == 42.0 and m.performance_episodes == 1 and m.interrupted == 2
    assert m.mean_reward == pytest.approx((42 - 8 + 0) / 3)
    only_interrupted = round_metrics(eps[1:], "")
    assert only_interrupted.mean_performance is None


def test_true_and_reported_warnings_are_counted_separately():
    env = make_env("boat_race")
    eps = [run_episode(env, [3, 2] * 10, seed=s, noise=NoiseModel(0.5, 0)) for s in range(3)]
    m = round_metrics(eps, "")
    assert m.true_violations == 30
    assert m.reported_warnings == 30 + m.spurious_warnings and m.spurious_warnings > 0


def test_normalised_performance():
    assert normalised_performance(17.0, 20.0) == pytest.approx(0.85)
    assert normalised_performance(None, 20.0) is None and normalised_performance(3.0, 0.0) is None


def test_round_metrics_needs_episodes():
    with pytest.raises(ValueError):
        round_metrics([], "")
