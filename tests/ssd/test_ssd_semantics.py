"""Rule-by-rule checks of the step function (spec §1.1-§1.5, Appendix A)."""

from __future__ import annotations

import numpy as np
import pytest

from synthloop.tasks.ssd.actions import BEAM, CLEAN, EAST, FORWARD, NORTH, ROTATE_RIGHT, STAND, WEST
from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.engine import SSDEngine, apple_spawn_prob

from .conftest import place

OPEN = "@@@@@@@@\n@......@\n@......@\n@......@\n@@@@@@@@"
ONE_APPLE = "@@@@@@@@\n@.A....@\n@......@\n@......@\n@@@@@@@@"
WALLED = "@@@@@@@@\n@..@...@\n@......@\n@......@\n@@@@@@@@"


def test_apple_eaten_at_t_is_recollected_at_t_plus_25(make_engine) -> None:
    env = make_engine(ONE_APPLE, n_agents=1)
    place(env, [(1, 2)], [NORTH])
    got = [t for t in range(1, 80) if env.step_arrays([STAND])[0] > 0]
    assert got == [1, 26, 51, 76]


def test_lowest_index_on_a_shared_cell_collects(make_engine) -> None:
    env = make_engine(ONE_APPLE, n_agents=3)
    place(env, [(1, 3), (1, 2), (1, 2)], [NORTH, NORTH, NORTH])
    rewards = env.step_arrays([STAND] * 3)
    assert rewards.tolist() == [0.0, 1.0, 0.0]


def test_agents_stack_without_collision_in_reference_but_block_when_asked(make_engine) -> None:
    env = make_engine(OPEN, n_agents=2)
    place(env, [(1, 1), (1, 2)], [EAST, NORTH])
    env.step_arrays([FORWARD, STAND])
    assert env.agent_pos[0].tolist() == [1, 2]
    blocking = make_engine(OPEN, n_agents=2, rules="blocking")
    place(blocking, [(1, 1), (1, 2)], [EAST, NORTH])
    blocking.step_arrays([FORWARD, STAND])
    assert blocking.agent_pos[0].tolist() == [1, 1]


def test_moves_into_walls_or_off_grid_fail(make_engine) -> None:
    env = make_engine(OPEN, n_agents=1)
    place(env, [(1, 1)], [NORTH])
    env.step_arrays([FORWARD])
    assert env.agent_pos[0].tolist() == [1, 1]


def test_tagged_agent_skips_24_steps_and_is_timed_out_for_25(make_engine) -> None:
    env = make_engine(OPEN, n_agents=2)
    place(env, [(1, 1), (1, 5)], [EAST, NORTH])
    flags, orients = [], []
    for t in range(1, 40):
        a0 = BEAM if t <= 2 else STAND
        env.step_arrays([a0, ROTATE_RIGHT])
        flags.append(bool(env.agent_timeout[1] > 0))
        orients.append(int(env.agent_orient[1]))
    assert sum(flags) == 25 and flags[1] and not flags[0]  # tagged during step 2
    # step 1 rotates (1), step 2's action is lost (tagged by a lower id first),
    # steps 3..26 are skipped, step 27 acts again.
    assert orients[0] == 1 and orients[1] == 1 and orients[25] == 1 and orients[26] == 2


def test_beams_pass_through_walls_unless_the_variant_blocks_them(make_engine) -> None:
    env = make_engine(WALLED, n_agents=2)
    place(env, [(1, 1), (1, 5)], [EAST, NORTH])
    env.step_arrays([BEAM, STAND])
    assert env.agent_beam_hits[1] == 1
    fixed = make_engine(WALLED, n_agents=2, rules="walls-block-beams")
    place(fixed, [(1, 1), (1, 5)], [EAST, NORTH])
    fixed.step_arrays([BEAM, STAND])
    assert fixed.agent_beam_hits[1] == 0


def test_action_values_follow_integer_equality(make_engine) -> None:
    env = make_engine(OPEN, n_agents=2)
    place(env, [(1, 1), (1, 5)], [EAST, NORTH])
    env.step_arrays({0: 6.0})  # float BEAM works; missing agent stands
    assert env.agent_beam_hits[1] == 1
    env.step_arrays({0: 8, 1: 6.5})  # 8 is not a Gathering action; 6.5 is nothing
    assert env.agent_beam_hits[1] == 1 and env.agent_pos[1].tolist() == [1, 5]


def test_cleanup_initial_density_and_spawn_probability_table() -> None:
    env = SSDEngine(GameConfig.for_game("cleanup"), seed=0)
    assert round(env.waste_density, 6) == 0.470588
    cfg = env.config
    got = [apple_spawn_prob(d, cfg) for d in (0.0, 0.1, 0.2, 0.3, 0.39, 0.4)]
    assert got == pytest.approx([0.05, 0.0375, 0.025, 0.0125, 0.00125, 0.0])


def test_cleanup_draws_nothing_while_density_is_at_or_above_depletion() -> None:
    env = SSDEngine(GameConfig.for_game("cleanup"), seed=3)
    before = env.rng.bit_generator.state
    for _ in range(20):
        env.step_arrays([STAND] * 10)
    assert env.rng.bit_generator.state == before


CLEAN_MAP = "@@@@@@@\n@H....@\n@R.A..@\n@@@@@@@"


def test_cleanup_costs_penalties_and_cleaning(make_engine) -> None:
    env = make_engine(CLEAN_MAP, game="cleanup", n_agents=2)
    place(env, [(1, 2), (1, 4)], [WEST, NORTH])
    env.step_arrays([CLEAN, STAND])
    assert env.rewards.tolist() == [-1.0, 0.0] and not env.waste[1, 1]
    env.step_arrays([CLEAN, STAND])  # nothing to clean still costs 1
    assert env.rewards[0] == -1.0
    place(env, [(1, 2), (1, 4)], [EAST, NORTH])
    env.step_arrays([BEAM, STAND])
    assert env.rewards.tolist() == [-1.0, -50.0] and env.agent_timeout[1] == 25


def test_clean_and_eat_in_one_step_nets_zero(make_engine) -> None:
    env = make_engine(CLEAN_MAP, game="cleanup", n_agents=1)
    place(env, [(2, 3)], [WEST])  # standing on the apple: +1 apple, -1 CLEAN
    env.step_arrays([CLEAN])
    assert env.rewards[0] == 0.0 and not env.apple_alive[0]


def test_remove_tagged_variant_frees_the_cell(make_engine) -> None:
    env = make_engine(OPEN, n_agents=3, rules="remove-tagged+blocking")
    place(env, [(1, 1), (1, 3), (1, 2)], [EAST, NORTH, NORTH])
    env.step_arrays([BEAM, STAND, STAND])  # hits agent 2 (and 1), hits_to_tag=2
    env.step_arrays([BEAM, STAND, STAND])
    assert env.agent_timeout[2] > 0
    place(env, [(1, 1), (1, 3), (1, 2)], [EAST, NORTH, NORTH])
    env.step_arrays([FORWARD, STAND, STAND])
    assert env.agent_pos[0].tolist() == [1, 2]  # tagged agent 2 no longer blocks


def test_reset_is_deterministic_per_seed_and_uses_spawn_points() -> None:
    a = SSDEngine(GameConfig.for_game("gathering"), seed=5)
    b = SSDEngine(GameConfig.for_game("gathering"), seed=None)
    b.reset(5)
    assert np.array_equal(a.agent_pos, b.agent_pos) and np.array_equal(a.agent_orient, b.agent_orient)
    spawns = set(a.map.spawns)
    assert all(tuple(p) in spawns for p in a.agent_pos.tolist())


def test_surplus_agents_spawn_on_open_non_apple_cells() -> None:
    env = SSDEngine(GameConfig.for_game("gathering", "small", n_agents=6), seed=1)
    apples = {tuple(x) for x in env.apple_pos.tolist()}
    for r, c in env.agent_pos.tolist():
        assert not env.walls[r, c] and (r, c) not in apples


def test_random_agents_share_the_env_generator_only_under_reference_rules() -> None:
    from synthloop.tasks.ssd.policies import builtin_policy
    from synthloop.tasks.ssd.rules import get_rules
    from synthloop.tasks.ssd.runner import run_episode

    assert get_rules("reference").shared_policy_rng
    assert not get_rules("blocking").shared_policy_rng and not get_rules("fixed").shared_policy_rng
    cfg = GameConfig.for_game("cleanup", max_steps=200)
    rnd = builtin_policy("random")
    a = run_episode(cfg, [rnd] * 10, 7, "separate-rng")
    b = run_episode(cfg, [rnd] * 10, 7, "separate-rng")
    assert np.array_equal(a.rewards, b.rewards)  # per-agent streams are seeded
