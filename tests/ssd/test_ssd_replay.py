"""The judge's replay plays a whole Gathering episode in one compiled call (``SSDEngine.play_recorded``).

It must be the same game as stepping: identical rewards, time-outs, statistics and final state for
random action records (invalid ids included) under every rule variant, on every Gathering map.
Cleanup falls back to stepping, so it is equal by construction; it is checked too.
"""

from __future__ import annotations

import numpy as np
import pytest

from synthloop.tasks.ssd import kernels
from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.engine import SSDEngine
from synthloop.tasks.ssd.maps import MAP_TEXTS
from synthloop.tasks.ssd.rules import get_rules

RULES = ["reference", "blocking", "walls-block-beams", "remove-tagged", "blocking+walls-block-beams+remove-tagged",
         "fixed"]


def _stepped(cfg: GameConfig, rules: str, seed: int, actions: np.ndarray) -> tuple:
    eng = SSDEngine(cfg, get_rules(rules))
    eng.reset(seed)
    rewards = np.zeros(actions.shape)
    timed_out = np.zeros(actions.shape, dtype=bool)
    for t in range(actions.shape[0]):
        rewards[t] = eng.step_arrays(np.ascontiguousarray(actions[t]))
        timed_out[t] = eng.agent_timeout > 0
    return eng, rewards, timed_out


@pytest.mark.parametrize("game", ["gathering", "cleanup"])
@pytest.mark.parametrize("rules", RULES)
def test_play_recorded_equals_stepping(game: str, rules: str) -> None:
    eaten = 0
    for map_name in MAP_TEXTS[game]:
        cfg = GameConfig.for_game(game, map_name, n_agents=6, max_steps=120)
        rng = np.random.default_rng(abs(hash((game, rules, map_name))) % 2**32)
        # beams and moves often, so that tagging, time-outs and regrowth all happen; -1 is an invalid no-op
        actions = rng.integers(-1, cfg.n_actions, size=(cfg.max_steps, cfg.n_agents))
        for seed in (0, 3):
            ref, r_rew, r_to = _stepped(cfg, rules, seed, actions)
            eng = SSDEngine(cfg, get_rules(rules))
            eng.reset(seed)
            rew, to, _ = eng.play_recorded(actions)
            assert np.array_equal(rew, r_rew) and np.array_equal(to, r_to), (map_name, seed)
            for name in ("agent_pos", "agent_orient", "agent_timeout", "agent_beam_hits", "apple_alive",
                         "waste", "stats"):
                assert np.array_equal(getattr(eng, name), getattr(ref, name)), (map_name, seed, name)
            assert eng.step_count == ref.step_count
            eaten += int(eng.stats[:, kernels.STAT_EATEN].sum())
    assert eaten > 0  # apples were eaten: the games really ran
