"""Policy API: read-only snapshots, per-agent memory, helper semantics."""

from __future__ import annotations

import gc
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthloop.tasks.ssd import helpers as H
from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.engine import SSDEngine
from synthloop.tasks.ssd.policies import bfs_policy, builtin_policy
from synthloop.tasks.ssd.runner import run_episode
from synthloop.tasks.ssd.state import PolicyState, make_snapshot


def test_snapshot_arrays_are_read_only_copies() -> None:
    env = SSDEngine(GameConfig.for_game("cleanup"), seed=0)
    s = env.snapshot()
    for name in ("agent_pos", "agent_orient", "agent_timeout", "apple_alive", "walls", "waste", "apple_pos"):
        arr = getattr(s, name)
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr.flat[0] = arr.flat[0]
    with pytest.raises(AttributeError):
        s.step = 5  # type: ignore[misc]
    assert not np.shares_memory(s.agent_pos, env.agent_pos)


def test_snapshot_reaches_neither_engine_nor_generator() -> None:
    env = SSDEngine(GameConfig.for_game("gathering", "small", n_agents=2), seed=0)
    snap = make_snapshot(env)
    seen, todo = set(), [snap]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        assert obj is not env and obj is not env.rng and not isinstance(obj, np.random.Generator)
        if isinstance(obj, (PolicyState, dict, list, tuple, set, frozenset)):
            todo.extend(gc.get_referents(obj))


def test_memory_is_per_agent_and_reset_every_episode() -> None:
    seen: list[tuple[int, int, int]] = []

    def counting(state: PolicyState, agent_id: int) -> int:
        state.memory["n"] = state.memory.get("n", 0) + 1
        seen.append((state.step, agent_id, state.memory["n"]))
        return 7

    cfg = GameConfig.for_game("gathering", "small", n_agents=2, max_steps=3)
    run_episode(cfg, [counting, counting], 0)
    run_episode(cfg, [counting, counting], 1)
    assert [n for (_s, _a, n) in seen] == [1, 1, 2, 2, 3, 3] * 2


def _forward_bfs(walls: np.ndarray, start: tuple[int, int], targets: set[tuple[int, int]]):
    """The reference's forward search, written independently for comparison."""
    if not targets:
        return None
    if start in targets:
        return (0, 0)
    h, w = walls.shape
    seen = {start}
    q: deque = deque()
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        r, c = start[0] + dr, start[1] + dc
        if 0 <= r < h and 0 <= c < w and not walls[r, c] and (r, c) not in seen:
            seen.add((r, c))
            if (r, c) in targets:
                return (dr, dc)
            q.append((r, c, dr, dc))
    while q:
        r0, c0, fr, fc = q.popleft()
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            r, c = r0 + dr, c0 + dc
            if 0 <= r < h and 0 <= c < w and not walls[r, c] and (r, c) not in seen:
                seen.add((r, c))
                if (r, c) in targets:
                    return (fr, fc)
                q.append((r, c, fr, fc))
    return None


@settings(max_examples=60, deadline=None)
@given(
    st.integers(4, 9), st.integers(4, 9), st.integers(0, 2**31 - 1), st.floats(0.0, 0.35), st.integers(1, 6),
)
def test_reverse_field_first_step_equals_forward_bfs(h: int, w: int, seed: int, wall_p: float, k: int) -> None:
    rng = np.random.default_rng(seed)
    walls = rng.random((h, w)) < wall_p
    open_cells = np.argwhere(~walls)
    if len(open_cells) < 2:
        return
    start = tuple(int(x) for x in open_cells[rng.integers(len(open_cells))])
    targets = {tuple(int(x) for x in open_cells[rng.integers(len(open_cells))]) for _ in range(k)}
    state = PolicyState(walls=walls, agent_pos=np.array([start]), height=h, width=w)
    assert H.bfs_to_target_set(state, 0, targets) == _forward_bfs(walls, start, targets)


def test_fast_bfs_path_equals_generic_policy_calls() -> None:
    def generic(state: PolicyState, agent_id: int) -> int:
        return bfs_policy(state, agent_id)

    cfg = GameConfig.for_game("gathering", max_steps=300)
    fast = run_episode(cfg, [bfs_policy] * 10, 2)
    slow = run_episode(cfg, [generic] * 10, 2)
    assert np.array_equal(fast.rewards, slow.rewards)


def test_helpers_cache_one_field_per_step() -> None:
    env = SSDEngine(GameConfig.for_game("gathering"), seed=0)
    s = env.snapshot()
    for i in range(10):
        H.bfs_nearest_apple(s, i)
    assert sum(1 for k in s._cache if isinstance(k, tuple) and k[0] == "field") == 1
    assert env.snapshot() is s  # shared until the engine steps


def test_beam_helpers_and_opponents() -> None:
    env = SSDEngine(GameConfig.for_game("gathering", "small", n_agents=2), seed=0)
    env.agent_pos[:] = [(1, 1), (1, 4)]
    env.agent_orient[:] = [1, 0]
    s = env.snapshot()
    opp = H.get_opponents(s, 0)
    assert opp == [(1, 1, 4, 3, 0)]
    assert H.beam_targets(s, 1, 1, 1, opp) == [(1, 3, 0)]
    assert H.beam_targets(s, 1, 1, 2, opp) == []
    assert H.rotation_distance(0, 3) == 1 and H.rotation_distance(0, 2) == 2


def test_cleaner_probe_and_waste_helpers() -> None:
    env = SSDEngine(GameConfig.for_game("cleanup"), seed=0)
    env.agent_pos[0] = (2, 7)
    env.agent_orient[0] = 3  # west, towards the polluted row 2
    s = env.snapshot()
    assert H.waste_in_footprint(s, 0) > 0 and H.can_clean_waste(s, 0)
    assert builtin_policy("cleaner")(s, 0) == 8
    info = H.bfs_nearest_waste_info(s, 0)
    assert info is not None and info[2] >= 1
