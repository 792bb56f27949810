"""Appendix A golden values, reproduced exactly (to the spec's 4 decimals)."""

from __future__ import annotations

import numpy as np
import pytest

from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.policies import builtin_policy
from synthloop.tasks.ssd.runner import run_episode


def _metrics(game: str, policy: str, seed: int, protocol_random: bool = False):
    cfg = GameConfig.for_game(game)
    p = builtin_policy(policy)
    pols = [p, p] + [builtin_policy("random8")] * 8 if protocol_random else [p] * 10
    return run_episode(cfg, pols, seed).metrics


GATHERING_BFS = {
    0: (1.545, 0.2996, 152.6874, 10.0),
    1: (2.128, 0.3530, 216.2037, 10.0),
    2: (1.661, 0.3337, 155.7677, 10.0),
    3: (2.086, 0.3630, 195.3680, 10.0),
    4: (2.089, 0.3798, 181.8767, 10.0),
}


@pytest.mark.parametrize("seed", sorted(GATHERING_BFS))
def test_gathering_large_all_bfs_matches_reference(seed: int) -> None:
    m = _metrics("gathering", "bfs", seed)
    got = (m.efficiency, m.equality, m.sustainability, m.peace)
    assert tuple(round(x, 4) for x in got) == GATHERING_BFS[seed]


@pytest.mark.parametrize(("seed", "expected"), [(0, (3.274, 0.9474, 498.5065)), (4, (3.295, 0.9464, 497.7536))])
def test_gathering_cooperative_matches_reference(seed: int, expected: tuple[float, ...]) -> None:
    m = _metrics("gathering", "cooperative", seed)
    assert (round(m.efficiency, 4), round(m.equality, 4), round(m.sustainability, 4)) == expected
    assert m.peace == 10.0


@pytest.mark.parametrize(
    ("seed", "expected"), [(0, (0.98, 0.7437, 436.1423, 3.13)), (4, (0.954, 0.535, 295.2837, 4.761))]
)
def test_gathering_exploitative_matches_reference(seed: int, expected: tuple[float, ...]) -> None:
    m = _metrics("gathering", "exploitative", seed)
    assert tuple(round(x, 4) for x in (m.efficiency, m.equality, m.sustainability, m.peace)) == expected


CLEANUP_E = [0.6515, 0.6282, 0.6456, 0.6456, 0.6437]
CLEANUP_S = [17.1419, 17.1049, 16.9367, 16.9367, 16.9367]


@pytest.mark.parametrize("seed", range(5))
def test_cleanup_collector_matches_reference(seed: int) -> None:
    m = _metrics("cleanup", "collector", seed)
    assert round(m.efficiency, 4) == 0.103
    assert round(m.equality, 4) == CLEANUP_E[seed]
    assert round(m.sustainability, 4) == CLEANUP_S[seed]
    assert m.peace == 10.0


def test_cleanup_random_uses_reference_draw_order() -> None:
    m = _metrics("cleanup", "random8", 0)
    assert (round(m.efficiency, 4), round(m.peace, 4), round(m.sustainability, 4)) == (-7.293, 6.826, 222.0369)


def test_reference_mixed_protocol_reproduces_paper_bfs_row() -> None:
    ms = [_metrics("gathering", "bfs", s, protocol_random=True) for s in range(9999, 10004)]
    assert round(float(np.mean([m.efficiency for m in ms])), 3) == 1.294
    assert round(float(np.mean([m.peace for m in ms])), 3) == 8.536


def _mean_eval(game: str, policy: str, protocol: str, seeds: list[int]) -> dict:
    from synthloop.tasks.ssd.evaluate import evaluate_policy

    return evaluate_policy(game, f"builtin:{policy}", protocol=protocol, seeds=seeds, workers=1)["mean"]


@pytest.mark.parametrize(
    ("game", "policy", "protocol", "expected"),
    [
        # spec §7.5 (all 10 agents, seeds 0-4)
        ("gathering", "random8", "self-play", {"efficiency": 0.724, "peace": 8.329}),
        ("gathering", "exploitative", "self-play", {"efficiency": 0.959, "peace": 3.616}),
        ("cleanup", "threshold", "self-play", {"efficiency": -0.489, "sustainability": 83.3}),
        ("cleanup", "cleaner", "self-play", {"efficiency": -0.680}),
        ("cleanup", "random8", "self-play", {"efficiency": -7.121, "peace": 6.880}),
        # spec §7.5/§7.6 script protocols (seeds 9999-10003)
        ("gathering", "cooperative", "reference-mixed", {"efficiency": 1.493, "peace": 8.622}),
        ("gathering", "exploitative", "reference-mixed", {"efficiency": 0.933, "peace": 5.768}),
        ("cleanup", "threshold", "cleanup-script", {"efficiency": -0.686, "mean_waste_density": 0.307}),
        ("cleanup", "cleaner", "cleanup-script", {"efficiency": -0.621, "clean_actions": 621}),
        ("cleanup", "random", "cleanup-script", {"efficiency": -7.568, "sustainability": 519.7}),
    ],
)
def test_re_measured_baseline_rows(game: str, policy: str, protocol: str, expected: dict) -> None:
    from synthloop.tasks.ssd.evaluate import DEFAULT_SEEDS

    mean = _mean_eval(game, policy, protocol, DEFAULT_SEEDS[protocol])
    for key, value in expected.items():
        decimals = len(str(value).split(".")[1]) if "." in str(value) else 0
        assert round(mean[key], decimals) == value, key
