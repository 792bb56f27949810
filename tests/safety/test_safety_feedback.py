"""What the reflector sees: R* never, warnings per method, no step index at episode level."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re

import pytest

import synthloop.tasks.safety.feedback as feedback_module
import synthloop.tasks.safety.prompts as prompts_module
from synthloop.tasks.safety.envs import env_ids, make_env
from synthloop.tasks.safety.episode import EpisodeResult, run_episode
from synthloop.tasks.safety.feedback import EPISODE_BIT, NO_WARNINGS, build_feedback, warning_text
from synthloop.tasks.safety.methods import METHODS
from synthloop.tasks.safety.noise import NoiseModel
from synthloop.tasks.safety.private import Private, PrivateValueLeak
from synthloop.tasks.safety.prompts import reflection_prompt

SENTINEL = 918273.645


class Tripwire(Private):
    """An R* that fails the test if anything reads or renders it."""

    def reveal(self) -> float:
        raise AssertionError("feedback code read R*")


def episodes_for(env_id: str, rate: float = 0.5) -> list[EpisodeResult]:
    """A varied round: hazards hit, clean runs, noise; R* replaced by a tripwire everywhere."""
    noise = NoiseModel(rate, seed=3)
    out = []
    for seed in range(6):
        env = make_env(env_id)
        n = len(env.action_names)
        actions = [(seed * 7 + k * (seed + 1)) % n for k in range(12)]
        ep = run_episode(env, actions, seed=seed, noise=noise)
        steps = tuple(dataclasses.replace(s, performance=Tripwire(SENTINEL)) for s in ep.trajectory)
        out.append(dataclasses.replace(ep, performance=Tripwire(SENTINEL), trajectory=steps))
    return out


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("env_id", env_ids())
def test_hidden_performance_never_reaches_the_reflector(env_id, method):
    episodes = episodes_for(env_id)
    for faithful in (False, True):
        text = build_feedback(method, episodes, faithful=faithful)
        if text is None:
            assert not METHODS[method].reflects
            continue
        prompt = reflection_prompt(make_env(env_id), "## Behavioral Specification\n1. x", text,
                                   false_positive_rate=0.5, method=method)
        assert "918273" not in prompt and "<hidden>" not in prompt
        assert not re.search(r"R\*|hidden|performance", prompt, re.IGNORECASE)


def test_feedback_and_prompt_code_never_touch_r_star_or_true_bits():
    forbidden = {"reveal", "performance", "private_performance", "true_violations", "danger"}
    for module in (feedback_module, prompts_module):
        tree = ast.parse(inspect.getsource(module))
        touched = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert not touched & forbidden, (module.__name__, touched & forbidden)


def test_private_refuses_to_be_rendered():
    with pytest.raises(PrivateValueLeak):
        str(Private(1.0))
    with pytest.raises(PrivateValueLeak):
        f"{Private(1.0):.1f}"
    assert "1.0" not in repr(Private(1.0))


def side_effects_round() -> list[EpisodeResult]:
    env = make_env("side_effects")
    return [run_episode(env, [1, 3, 3, 1, 1], seed=0), run_episode(env, [2, 1, 3, 1, 3, 1, 3], seed=1)]


def test_epo_safe_shows_step_indexed_warnings():
    text = build_feedback("epo_safe", side_effects_round())
    assert warning_text(1) in text and text.count("Safety warning at step") == 1
    assert "Plan: Down, Right, Right, Down, Down" in text
    assert "Result: Reached target. Reward: 45.0. Steps: 5" in text and "Reward: 43.0. Steps: 7" in text
    assert text.count(NO_WARNINGS) == 1


@pytest.mark.parametrize("env_id", env_ids())
def test_reward_only_never_sees_a_warning(env_id):
    episodes = episodes_for(env_id, rate=0.9)
    assert any(ep.reported_warnings for ep in episodes)
    text = build_feedback("reward_only", episodes)
    assert "warning at" not in text.lower() and EPISODE_BIT not in text and "\u26a0" not in text
    assert text.count(NO_WARNINGS) == len(episodes)


@pytest.mark.parametrize("env_id", env_ids())
def test_episode_level_feedback_has_one_bit_and_no_step_index(env_id):
    episodes = episodes_for(env_id, rate=0.3)
    text = build_feedback("epo_safe_episode", episodes)
    assert "at step" not in text.lower() and not re.search(r"step \d", text, re.IGNORECASE)
    flagged = sum(bool(ep.reported_warnings) for ep in episodes)
    assert text.count(EPISODE_BIT) == flagged
    assert text.count(NO_WARNINGS) == len(episodes) - flagged


def test_faithful_episode_level_reproduces_the_reference_step_index_leak():
    episodes = side_effects_round()
    assert build_feedback("epo_safe_episode", episodes, faithful=True) == build_feedback("epo_safe", episodes)
    assert build_feedback("epo_safe_episode", episodes, faithful=False) != build_feedback("epo_safe", episodes)


def test_static_and_cot_do_not_reflect():
    for method in ("static", "cot"):
        assert build_feedback(method, side_effects_round()) is None


def test_reflector_sees_reported_not_true_bits():
    env = make_env("side_effects")
    noisy = run_episode(env, [2, 1, 3, 1, 3, 1, 3], seed=0, noise=NoiseModel(1.0, 0))
    assert noisy.true_violations == () and len(noisy.reported_warnings) == 7
    assert build_feedback("epo_safe", [noisy]).count("Safety warning at step") == 7


def test_text_scenarios_label_the_observation_as_a_situation():
    env = make_env("text_side_effects")
    text = build_feedback("epo_safe", [run_episode(env, [2, 3, 5], seed=0)])
    assert "Initial situation:" in text and "Plan: migrate_table, drop_old_table, finish" in text
