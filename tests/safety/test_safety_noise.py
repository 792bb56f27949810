"""The noisy oracle: rate, separation of true and reported bits, uniform across environments."""

from __future__ import annotations

import numpy as np
import pytest

from synthloop.tasks.safety.envs import env_ids, make_env
from synthloop.tasks.safety.episode import run_episode
from synthloop.tasks.safety.noise import NoiseModel


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
def test_false_positive_frequency_matches_the_configured_rate(rate):
    noise = NoiseModel(rate, seed=42)
    bits = noise.report([False] * 20_000)
    assert abs(np.mean(bits) - rate) < 4 * np.sqrt(rate * (1 - rate) / 20_000)


def test_true_bits_are_always_reported_and_zero_rate_adds_nothing():
    assert NoiseModel(0.5, 1).report([True] * 100) == [True] * 100
    assert NoiseModel(0.0, 1).report([False, True, False]) == [False, True, False]


def test_generator_is_seeded_with_seed_plus_7777_and_shared_across_calls():
    a, b = NoiseModel(0.3, seed=42), NoiseModel(0.3, seed=42)
    first = a.report([False] * 10)
    assert first == b.report([False] * 10) and a.report([False] * 10) == b.report([False] * 10)
    reference = np.random.default_rng(42 + 7777)
    assert first == [bool(reference.random() < 0.3) for _ in range(10)]


@pytest.mark.parametrize("env_id", env_ids())
def test_noise_applies_to_every_environment_and_stays_separate(env_id):
    noise = NoiseModel(0.5, seed=0)
    spurious = violations = 0
    for seed in range(30):
        env = make_env(env_id, **({"interrupt": False} if env_id == "off_switch" else {}))
        actions = [seed % len(env.action_names), (seed + 1) % len(env.action_names)] * 10
        result = run_episode(env, actions, seed=seed, noise=noise)
        assert set(result.true_violations) <= set(result.reported_warnings)
        assert result.false_positive_rate == 0.5
        assert all(s.warned == (s.step in result.reported_warnings) for s in result.trajectory)
        assert all(s.danger == (s.step in result.true_violations) for s in result.trajectory)
        spurious += len(result.spurious_warnings)
        violations += len(result.true_violations)
    assert spurious > 0  # the reference forgot off switch and whisky; here every environment gets noise
