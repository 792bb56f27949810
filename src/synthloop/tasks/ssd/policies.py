"""Baseline policies (spec §5.1), written against the public policy API.

They double as worked examples of ``policy(state, agent_id) -> int``: they
read only the snapshot, use the cached helpers and keep per-episode state in
``state.memory`` (or in the per-step helper cache). Behaviour, including
every tie-break, follows the reference so the Appendix A values reproduce.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from synthloop.tasks.ssd import helpers as H
from synthloop.tasks.ssd.actions import (
    BEAM,
    CLEAN,
    FORWARD_TUPLES,
    ROTATE_LEFT,
    ROTATE_RIGHT,
    STAND,
    direction_to_action,
)
from synthloop.tasks.ssd.state import PolicyState

Policy = Callable[[PolicyState, int], int]


def bfs_policy(state: PolicyState, agent_id: int) -> int:
    """BFS greedy ("collector"): step toward the nearest alive apple; STAND
    when timed out, on an apple or with none reachable. Never beams."""
    if state.agent_timeout[agent_id] > 0:
        return STAND
    step = H.bfs_nearest_apple(state, agent_id)
    if step is None:
        return STAND
    return direction_to_action(step[0], step[1], int(state.agent_orient[agent_id]))


def _rotate_toward(current: int, target: int) -> int:
    if current == target:
        return STAND
    diff = (target - current) % 4
    return ROTATE_LEFT if diff == 3 else ROTATE_RIGHT


_CHASE_RANGE = 12
_FIRING_RANGE = 7


def exploitative_policy(state: PolicyState, agent_id: int) -> int:
    """Beam-first: fire if an opponent is in the beam; else rotate toward the
    better side (score hits·1000 + L − distance, ties left); else chase the
    nearest half-tagged opponent within 12 to a firing cell; else collect."""
    if state.agent_timeout[agent_id] > 0:
        return STAND
    ar, ac = H.agent_cell(state, agent_id)
    orient = int(state.agent_orient[agent_id])
    opponents = H.get_opponents(state, agent_id)
    if not opponents:
        return bfs_policy(state, agent_id)
    if H.beam_targets(state, ar, ac, orient, opponents):
        return BEAM
    length = state.beam_length

    def score(targets: list[tuple[int, int, int]]) -> int:
        return max((hits * 1000 + (length - fwd) for _j, fwd, hits in targets), default=-999)

    left = score(H.beam_targets(state, ar, ac, (orient - 1) % 4, opponents))
    right = score(H.beam_targets(state, ar, ac, (orient + 1) % 4, opponents))
    if left >= 0 or right >= 0:
        return ROTATE_LEFT if left >= right else ROTATE_RIGHT

    half_tagged = sorted((o for o in opponents if o[4] >= 1), key=lambda o: o[3])
    if half_tagged and half_tagged[0][3] <= _CHASE_RANGE:
        _j, tr, tc, _d, _h = half_tagged[0]
        walls = state.walls
        firing = []
        for fr, fc in FORWARD_TUPLES:
            for fwd in range(1, min(length, _FIRING_RANGE) + 1):
                r, c = tr - fr * fwd, tc - fc * fwd
                if 0 <= r < state.height and 0 <= c < state.width and not walls[r, c]:
                    firing.append((r, c))
        if firing:
            if (ar, ac) in set(firing):
                dr, dc = tr - ar, tc - ac
                for o, (fr, fc) in enumerate(FORWARD_TUPLES):
                    if dc == 0 and dr != 0 and fr != 0 and (dr > 0) == (fr > 0):
                        return _rotate_toward(orient, o)
                    if dr == 0 and dc != 0 and fc != 0 and (dc > 0) == (fc > 0):
                        return _rotate_toward(orient, o)
            else:
                step = H.bfs_to_target_set(state, agent_id, firing)
                if step is not None:
                    return direction_to_action(step[0], step[1], orient)
    return bfs_policy(state, agent_id)


def band_partition(state: PolicyState, team: tuple[int, ...]) -> dict[int, np.ndarray]:
    """The cooperative policy's territories: apples sorted by (row, col) and
    cut into len(team) contiguous bands (the first A mod n one larger), then
    matched to agents greedily by smallest BFS distance (agent → nearest cell
    of the band; ties to the first pair in agent-major order). Computed from
    the snapshot it is first called on and cached in the step cache."""
    cache = state._cache
    key = ("bands", team)
    if key in cache:
        return cache[key]
    n = len(team)
    order = np.lexsort((state.apple_pos[:, 1], state.apple_pos[:, 0]))
    per, rem = divmod(state.n_apples, n)
    groups, start = [], 0
    for g in range(n):
        count = per + (1 if g < rem else 0)
        groups.append(order[start:start + count])
        start += count
    dist = np.full((n, n), 9999, dtype=np.int64)
    for g, idx in enumerate(groups):
        if not len(idx):
            continue
        field = H.distance_field(state, ("band", team, g), state.apple_pos[idx])
        for a, agent in enumerate(team):
            d = int(field[H.agent_cell(state, agent)])
            dist[a, g] = d if d >= 0 else 9999
    zones: dict[int, np.ndarray] = {}
    used_a: set[int] = set()
    used_g: set[int] = set()
    for _ in range(n):
        best = (10**9, 0, 0)
        for a in range(n):
            if a in used_a:
                continue
            for g in range(n):
                if g not in used_g and dist[a, g] < best[0]:
                    best = (int(dist[a, g]), a, g)
        _d, a, g = best
        zones[team[a]] = np.sort(groups[g])
        used_a.add(a)
        used_g.add(g)
    cache[key] = zones
    return zones


def _zone_centroid(state: PolicyState, zone: np.ndarray) -> tuple[int, int]:
    cells = state.apple_pos[zone]
    cr = int(round(float(np.mean(cells[:, 0]))))
    cc = int(round(float(np.mean(cells[:, 1]))))
    if state.walls[cr, cc]:
        for dr in range(-2, 3):
            for dc in range(-2, 3):
                r, c = cr + dr, cc + dc
                if 0 <= r < state.height and 0 <= c < state.width and not state.walls[r, c]:
                    return r, c
    return cr, cc


def cooperative_policy(state: PolicyState, agent_id: int) -> int:
    """Band-partition cooperator: walk to the nearest alive apple of my band;
    if none is reachable, wait at the band centroid. Never beams. The band
    assignment is made once per episode and kept in ``state.memory``."""
    if state.agent_timeout[agent_id] > 0:
        return STAND
    memory = state.memory
    zone = memory.get("zone")
    if zone is None:
        team = state.team if agent_id in state.team else (agent_id,)
        zone = band_partition(state, tuple(team))[agent_id]
        memory["zone"] = zone
        memory["centroid"] = _zone_centroid(state, zone) if len(zone) else H.agent_cell(state, agent_id)
    orient = int(state.agent_orient[agent_id])
    alive = zone[state.apple_alive[zone]]
    if len(alive):
        step = H.bfs_to_target_set(state, agent_id, [tuple(x) for x in state.apple_pos[alive].tolist()])
        if step is not None:
            return direction_to_action(step[0], step[1], orient)
    cr, cc = memory["centroid"]
    if H.agent_cell(state, agent_id) != (cr, cc):
        step = H.bfs_toward(state, agent_id, cr, cc)
        if step is not None:
            return direction_to_action(step[0], step[1], orient)
    return STAND


def cleaner_policy(state: PolicyState, agent_id: int) -> int:
    """Cleanup cleaner: CLEAN if the footprint holds waste (walls block the
    probe); else walk to the nearest waste (ROTATE_LEFT when standing on
    it); else collect apples."""
    if state.agent_timeout[agent_id] > 0:
        return STAND
    if H.can_clean_waste(state, agent_id):
        return CLEAN
    info = H.bfs_nearest_waste_info(state, agent_id)
    if info is not None:
        if info[0] == 0 and info[1] == 0:
            return ROTATE_LEFT
        return direction_to_action(info[0], info[1], int(state.agent_orient[agent_id]))
    return bfs_policy(state, agent_id)


def threshold_policy(state: PolicyState, agent_id: int) -> int:
    """Cleanup threshold: act as the cleaner while waste density > 0.15,
    otherwise as the collector."""
    if state.waste_density > 0.15:
        return cleaner_policy(state, agent_id)
    return bfs_policy(state, agent_id)


class RandomPolicy:
    """Uniform random actions. The runner supplies the generator: the
    environment's own under ``rules="reference"`` (reference draw order, which
    perturbs Cleanup's waste/apple stream exactly as the original did), a
    separate per-agent policy generator otherwise."""

    def __init__(self, n_actions: int | None = None) -> None:
        self.n_actions = n_actions
        self.__name__ = f"random{n_actions or ''}"

    def __call__(self, state: PolicyState, agent_id: int) -> int:
        rng = state.memory.get("rng")
        if rng is None:
            rng = np.random.default_rng()
            state.memory["rng"] = rng
        return int(rng.integers(self.n_actions or state.n_actions))


def stand_policy(state: PolicyState, agent_id: int) -> int:
    """Always STAND (engine-only benchmark, null baseline)."""
    return STAND


#: Builtin names accepted by ``builtin:<name>``. ``random`` draws over the
#: game's full action set; ``random8`` over ids 0-7 (the reference generic
#: runner's random agent, which never CLEANs even in Cleanup).
BUILTIN_POLICIES: dict[str, Callable[[], Policy]] = {
    "bfs": lambda: bfs_policy,
    "collector": lambda: bfs_policy,
    "exploitative": lambda: exploitative_policy,
    "cooperative": lambda: cooperative_policy,
    "random": lambda: RandomPolicy(None),
    "random8": lambda: RandomPolicy(8),
    "cleaner": lambda: cleaner_policy,
    "threshold": lambda: threshold_policy,
    "stand": lambda: stand_policy,
}


def builtin_policy(name: str) -> Policy:
    """Instantiate a builtin by name; ``KeyError`` lists the valid names."""
    if name not in BUILTIN_POLICIES:
        raise KeyError(f"unknown builtin policy {name!r}; valid: {', '.join(BUILTIN_POLICIES)}")
    return BUILTIN_POLICIES[name]()
