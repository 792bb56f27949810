"""Property tests (hypothesis): invariants under arbitrary action sequences."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from synthloop.tasks.ssd import kernels
from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.engine import SSDEngine
from synthloop.tasks.ssd.metrics import compute_metrics
from synthloop.tasks.ssd.rules import RULE_NAMES

GAMES = st.sampled_from([("gathering", "small"), ("gathering", "default"), ("cleanup", "small"), ("cleanup", "standard")])


@settings(max_examples=25, deadline=None)
@given(GAMES, st.integers(1, 6), st.integers(0, 10_000), st.sampled_from(RULE_NAMES), st.integers(0, 2**32 - 1))
def test_invariants_under_random_play(game_map, n_agents, seed, rules, action_seed) -> None:
    game, map_name = game_map
    cfg = GameConfig.for_game(game, map_name, n_agents=n_agents, max_steps=120)
    env = SSDEngine(cfg, rules, seed)
    rng = np.random.default_rng(action_seed)
    steps = 120
    rewards = np.zeros((steps, n_agents))
    flags = np.zeros((steps, n_agents), bool)
    for t in range(steps):
        actions = rng.integers(-1, cfg.n_actions + 1, size=n_agents)
        rewards[t] = env.step_arrays(actions)
        flags[t] = env.agent_timeout > 0
        r, c = env.agent_pos[:, 0], env.agent_pos[:, 1]
        assert ((r >= 0) & (r < env.height) & (c >= 0) & (c < env.width)).all()
        assert not env.walls[r, c].any()
        assert (env.agent_timeout >= 0).all() and (env.agent_timeout <= cfg.timeout_steps).all()
        assert not (env.waste & ~env.river_mask).any()
    stats = env.stats
    eaten = stats[:, kernels.STAT_EATEN].sum()
    beams = stats[:, kernels.STAT_BEAMS].sum()
    cleans = stats[:, kernels.STAT_CLEANS].sum()
    # every hit on an eligible agent is either a tag or leaves a pending hit; in
    # Cleanup (1 hit tags) hits == tags, so penalties = 50 * tags.
    penalties = cfg.fire_penalty * stats[:, kernels.STAT_TAGGED].sum() if cfg.is_cleanup else 0.0
    expected = eaten - cfg.fire_cost * beams - cfg.clean_cost * cleans - penalties
    assert rewards.sum() == expected
    m = compute_metrics(rewards, flags)
    assert 0.0 <= m.peace <= n_agents
    assert 0.0 <= m.sustainability < steps
    assert m.equality <= 1.0
    if rewards.sum() <= 0:
        assert m.equality == 1.0
    if (rewards.sum(axis=0) >= 0).all():
        assert m.equality >= 0.0
