"""Social metrics exactly as spec §2 (including its conventions)."""

from __future__ import annotations

import numpy as np
import pytest

from synthloop.tasks.ssd.metrics import compute_metrics, equality, sustainability


def test_efficiency_is_collective_reward_per_step() -> None:
    rewards = np.zeros((10, 2))
    rewards[3, 0] = rewards[5, 1] = rewards[7, 1] = 1
    m = compute_metrics(rewards, np.zeros((10, 2), bool))
    assert m.efficiency == pytest.approx(0.3) and m.returns == (1.0, 2.0) and m.maximin == 1.0


def test_equality_is_one_minus_gini_and_one_for_non_positive_totals() -> None:
    assert equality(np.array([5.0, 5.0])) == 1.0
    assert equality(np.array([10.0, 0.0])) == pytest.approx(0.5)
    assert equality(np.array([-3.0, -1.0])) == 1.0
    assert equality(np.array([0.0, 0.0])) == 1.0


def test_equality_can_go_negative_when_some_returns_are_negative() -> None:
    assert equality(np.array([10.0, -9.0])) < 0


def test_sustainability_averages_mean_reward_times_over_rewarded_agents() -> None:
    r = np.zeros((10, 3))
    r[2, 0] = r[4, 0] = 1  # mean 3
    r[9, 1] = 1  # mean 9; agent 2 never rewarded -> excluded
    assert sustainability(r) == pytest.approx(6.0)
    assert sustainability(np.zeros((5, 2))) == 0.0
    r2 = np.zeros((4, 1))
    r2[1, 0] = -1  # net negative steps do not count
    assert sustainability(r2) == 0.0


def test_peace_counts_untagged_agents_per_step() -> None:
    flags = np.zeros((100, 10), bool)
    flags[:25, 3] = True
    m = compute_metrics(np.zeros((100, 10)), flags)
    assert m.peace == pytest.approx(9.75)
