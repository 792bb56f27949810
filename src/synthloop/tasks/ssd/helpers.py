"""Helper library for policies, operating on a read-only ``PolicyState``.

Every helper takes the snapshot first. Distance fields are computed once
per (snapshot, target set) and cached on the snapshot, so ten agents asking
for "the nearest apple" in the same step cost one BFS, not ten.

BFS semantics are the reference's (spec §3.2): 4-neighbour moves, walls
block, agents do not, and ties are broken by expanding N, S, W, E. The
first step is read off a reverse (target-rooted) distance field: the first
neighbour in N, S, W, E order that is one step closer. That is provably the
same step the reference's forward search returns, because in a forward BFS
all cells first reached through an earlier first step are dequeued before
those reached through a later one.

Beam helpers treat walls as blocking, like the reference's planning helper
(the reference *engine* lets beams pass walls; see rules ``walls-block-beams``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from synthloop.tasks.ssd import kernels
from synthloop.tasks.ssd.actions import (
    BFS_DIRS,
    FORWARD_TUPLES,
    RIGHT_TUPLES,
    direction_to_action,
)
from synthloop.tasks.ssd.state import PolicyState

__all__ = [
    "agent_cell", "alive_apple_cells", "beam_targets", "beam_footprint", "bfs_distance",
    "bfs_nearest_apple", "bfs_nearest_apple_info", "bfs_nearest_waste_info", "bfs_to_target_set",
    "bfs_toward", "can_clean_waste", "direction_to_action", "distance_field", "first_step",
    "get_opponents", "rotation_distance", "waste_cells", "waste_in_footprint", "is_timed_out",
]

Step = tuple[int, int]


def agent_cell(state: PolicyState, agent_id: int) -> Step:
    """(row, col) of ``agent_id`` as plain ints."""
    cells = state._cache.get("cells")
    if cells is None:
        cells = [tuple(x) for x in state.agent_pos.tolist()]
        state._cache["cells"] = cells
    return cells[agent_id]


def is_timed_out(state: PolicyState, agent_id: int) -> bool:
    return bool(state.agent_timeout[agent_id] > 0)


def alive_apple_cells(state: PolicyState) -> np.ndarray:
    """(K, 2) array of cells holding an alive apple (cached per step)."""
    cache = state._cache
    cells = cache.get("alive_apples")
    if cells is None:
        cells = np.ascontiguousarray(state.apple_pos[state.apple_alive])
        cache["alive_apples"] = cells
    return cells


def waste_cells(state: PolicyState) -> np.ndarray:
    """(K, 2) array of polluted river cells (empty in Gathering)."""
    cache = state._cache
    cells = cache.get("waste_cells")
    if cells is None:
        cells = np.argwhere(state.waste)
        cache["waste_cells"] = cells
    return cells


def distance_field(state: PolicyState, key: object, cells: np.ndarray) -> np.ndarray:
    """BFS distance to the nearest of ``cells`` for every grid cell (-1 when
    unreachable), cached on the snapshot under ``key``."""
    cache = state._cache
    field = cache.get(("field", key))
    if field is None:
        field = kernels.distance_field(state.walls, np.asarray(cells, dtype=np.int64).reshape(-1, 2))
        field.setflags(write=False)
        cache[("field", key)] = field
    return field


def first_step(field: np.ndarray, walls: np.ndarray, r: int, c: int) -> Step | None:
    """First move of a shortest path on ``field`` from (r, c): (0, 0) when
    already on a target, None when no target is reachable."""
    code = kernels.first_step_code(field, walls, r, c)
    if code == 5:
        return None
    if code == 4:
        return (0, 0)
    return BFS_DIRS[code]


def _targets_array(targets: Iterable[tuple[int, int]]) -> tuple[object, np.ndarray]:
    cells = sorted({(int(r), int(c)) for r, c in targets})
    return ("set", tuple(cells)), np.array(cells, dtype=np.int64).reshape(-1, 2)


def bfs_nearest_apple_info(state: PolicyState, agent_id: int) -> tuple[int, int, int] | None:
    """(dr, dc, distance) toward the nearest alive apple, or None."""
    field = distance_field(state, "apples", alive_apple_cells(state))
    r, c = agent_cell(state, agent_id)
    step = first_step(field, state.walls, r, c)
    if step is None:
        return None
    return step[0], step[1], int(field[r, c])


def bfs_nearest_apple(state: PolicyState, agent_id: int) -> Step | None:
    """First step toward the nearest alive apple; (0, 0) if on one; None if none reachable."""
    info = bfs_nearest_apple_info(state, agent_id)
    return None if info is None else (info[0], info[1])


def bfs_nearest_waste_info(state: PolicyState, agent_id: int) -> tuple[int, int, int] | None:
    """(dr, dc, distance) toward the nearest polluted river cell, or None."""
    field = distance_field(state, "waste", waste_cells(state))
    r, c = agent_cell(state, agent_id)
    step = first_step(field, state.walls, r, c)
    if step is None:
        return None
    return step[0], step[1], int(field[r, c])


def bfs_to_target_set(state: PolicyState, agent_id: int, targets: Iterable[tuple[int, int]]) -> Step | None:
    """First step toward the nearest cell of ``targets`` (None if empty/unreachable)."""
    key, cells = _targets_array(targets)
    if not len(cells):
        return None
    field = distance_field(state, key, cells)
    r, c = agent_cell(state, agent_id)
    return first_step(field, state.walls, r, c)


def bfs_toward(state: PolicyState, agent_id: int, row: int, col: int) -> Step | None:
    """First step toward cell (row, col); (0, 0) if there; None if unreachable."""
    if agent_cell(state, agent_id) == (int(row), int(col)):
        return (0, 0)
    return bfs_to_target_set(state, agent_id, [(row, col)])


def bfs_distance(state: PolicyState, start: tuple[int, int], targets: Iterable[tuple[int, int]]) -> int | None:
    """Shortest-path length from ``start`` to the nearest target, None if unreachable."""
    key, cells = _targets_array(targets)
    if not len(cells):
        return None
    d = int(distance_field(state, key, cells)[int(start[0]), int(start[1])])
    return None if d < 0 else d


def get_opponents(state: PolicyState, agent_id: int) -> list[tuple[int, int, int, int, int]]:
    """Other agents not timed out: (id, row, col, Manhattan distance, beam_hits)."""
    ar, ac = agent_cell(state, agent_id)
    pos = state.agent_pos.tolist()
    timeout = state.agent_timeout.tolist()
    hits = state.agent_beam_hits.tolist()
    out = []
    for j in range(state.n_agents):
        if j == agent_id or timeout[j] > 0:
            continue
        jr, jc = pos[j]
        out.append((j, jr, jc, abs(jr - ar) + abs(jc - ac), hits[j]))
    return out


def beam_targets(
    state: PolicyState, row: int, col: int, orientation: int,
    opponents: list[tuple[int, int, int, int, int]],
) -> list[tuple[int, int, int]]:
    """Opponents a beam fired from (row, col) facing ``orientation`` would hit,
    as (id, forward distance, beam_hits). Walls between block (helper rule)."""
    fr, fc = FORWARD_TUPLES[orientation]
    rr, rc = RIGHT_TUPLES[orientation]
    half = state.beam_width // 2
    length = state.beam_length
    walls = state.walls
    out = []
    for j, jr, jc, _dist, bhits in opponents:
        dr, dc = jr - row, jc - col
        f = dr * fr + dc * fc
        w = dr * rr + dc * rc
        if not (1 <= f <= length and -half <= w <= half):
            continue
        blocked = False
        for k in range(1, f):
            r, c = row + k * fr + w * rr, col + k * fc + w * rc
            if not (0 <= r < state.height and 0 <= c < state.width) or walls[r, c]:
                blocked = True
                break
        if not blocked:
            out.append((j, f, bhits))
    return out


def rotation_distance(current: int, target: int) -> int:
    """Quarter turns (0-2) between two orientations."""
    diff = (target - current) % 4
    return min(diff, 4 - diff)


def beam_footprint(state: PolicyState, row: int, col: int, orientation: int, *, walls_block: bool = True) -> list[Step]:
    """Cells a beam from (row, col) covers, lane by lane. With
    ``walls_block`` a lane stops at the first wall or the grid edge (the
    helper rule); otherwise walls are skipped, as in the reference engine."""
    cells = kernels.footprint(state.walls, row, col, orientation, state.beam_length, state.beam_width, walls_block)
    return [(r, c) for r, c in cells.tolist()]


def waste_in_footprint(state: PolicyState, agent_id: int) -> int:
    """Polluted cells the agent's CLEAN beam would reach now (walls block, as
    in the reference cleaner's probe)."""
    r, c = agent_cell(state, agent_id)
    return int(kernels.count_in_footprint(
        state.walls, state.waste, r, c, int(state.agent_orient[agent_id]), state.beam_length, state.beam_width, True
    ))


def can_clean_waste(state: PolicyState, agent_id: int) -> bool:
    """True if CLEAN now would remove at least one waste cell (helper rule)."""
    return waste_in_footprint(state, agent_id) > 0
