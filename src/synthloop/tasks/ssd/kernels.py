"""Compiled inner loops of the engine (numba).

Only the per-agent action loop, apple bookkeeping and BFS live here; all
random draws stay in Python on the numpy ``Generator`` so the reference
draw order (spec §1.7) is reproduced bit-for-bit. Functions mutate the
arrays they are given, mirroring the reference's in-place, index-ordered
semantics: later agents see earlier agents' moves within the same step.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from synthloop.tasks.ssd.actions import FORWARD_VEC, RIGHT_VEC

_FWD = np.ascontiguousarray(FORWARD_VEC)
_RIGHT = np.ascontiguousarray(RIGHT_VEC)

# Beam mask bits (per step, for rendering/observations).
TAG_BEAM = 1
CLEAN_BEAM = 2

# Columns of the per-agent statistics matrix.
STAT_BEAMS, STAT_TAGGED, STAT_CLEANS, STAT_CLEANED, STAT_EATEN, STAT_INVALID = 0, 1, 2, 3, 4, 5
N_STATS = 6


@njit(cache=True)
def _blocked_by_agent(pos, timeout, remove_tagged, i, r, c):
    for j in range(pos.shape[0]):
        if j == i:
            continue
        if remove_tagged and timeout[j] > 0:
            continue
        if pos[j, 0] == r and pos[j, 1] == c:
            return True
    return False


@njit(cache=True)
def _lane_clear(walls, r0, c0, o, f, w):
    """True if no wall lies strictly between the firer and lane cell f."""
    for k in range(1, f):
        rr = r0 + k * _FWD[o, 0] + w * _RIGHT[o, 0]
        cc = c0 + k * _FWD[o, 1] + w * _RIGHT[o, 1]
        if walls[rr, cc]:
            return False
    return True


@njit(cache=True)
def apply_actions(
    actions, pos, orient, timeout, hits, walls, waste, beam_mask, rewards, stats,
    beam_len, beam_w, hits_to_tag, timeout_steps, is_cleanup,
    fire_cost, fire_penalty, clean_cost,
    agent_collision, walls_block_beams, remove_tagged,
):
    """Spec §1.5 steps 2-3: decrement timeouts, then apply each active
    agent's action immediately, in index order. Returns waste cells cleaned."""
    n = pos.shape[0]
    height, width = walls.shape
    half = beam_w // 2
    cleaned_total = 0
    for i in range(n):
        if timeout[i] > 0:
            timeout[i] -= 1
    for i in range(n):
        if timeout[i] > 0:
            continue
        a = actions[i]
        o = orient[i]
        if a <= 3 and a >= 0:
            if a == 0:
                dr, dc = _FWD[o, 0], _FWD[o, 1]
            elif a == 1:
                dr, dc = -_FWD[o, 0], -_FWD[o, 1]
            elif a == 2:
                dr, dc = -_RIGHT[o, 0], -_RIGHT[o, 1]
            else:
                dr, dc = _RIGHT[o, 0], _RIGHT[o, 1]
            nr = pos[i, 0] + dr
            nc = pos[i, 1] + dc
            if 0 <= nr < height and 0 <= nc < width and not walls[nr, nc]:
                if not (agent_collision and _blocked_by_agent(pos, timeout, remove_tagged, i, nr, nc)):
                    pos[i, 0] = nr
                    pos[i, 1] = nc
        elif a == 4:
            orient[i] = (o + 3) % 4
        elif a == 5:
            orient[i] = (o + 1) % 4
        elif a == 6 or (a == 8 and is_cleanup):
            r0 = pos[i, 0]
            c0 = pos[i, 1]
            mark = TAG_BEAM if a == 6 else CLEAN_BEAM
            for w in range(-half, half + 1):
                for f in range(1, beam_len + 1):
                    rr = r0 + f * _FWD[o, 0] + w * _RIGHT[o, 0]
                    cc = c0 + f * _FWD[o, 1] + w * _RIGHT[o, 1]
                    if rr < 0 or rr >= height or cc < 0 or cc >= width:
                        continue
                    if walls[rr, cc]:
                        if walls_block_beams:
                            break
                        continue
                    beam_mask[rr, cc] |= mark
                    if a == 8 and waste[rr, cc]:
                        waste[rr, cc] = False
                        stats[i, STAT_CLEANED] += 1
                        cleaned_total += 1
            if a == 8:
                rewards[i] -= clean_cost
                stats[i, STAT_CLEANS] += 1
                continue
            if is_cleanup:
                rewards[i] -= fire_cost
            stats[i, STAT_BEAMS] += 1
            for j in range(n):
                if j == i or timeout[j] > 0:
                    continue
                dr = pos[j, 0] - r0
                dc = pos[j, 1] - c0
                f = dr * _FWD[o, 0] + dc * _FWD[o, 1]
                w = dr * _RIGHT[o, 0] + dc * _RIGHT[o, 1]
                if f < 1 or f > beam_len or w < -half or w > half:
                    continue
                if walls_block_beams and not _lane_clear(walls, r0, c0, o, f, w):
                    continue
                hits[j] += 1
                if is_cleanup:
                    rewards[j] -= fire_penalty
                if hits[j] >= hits_to_tag:
                    timeout[j] = timeout_steps
                    hits[j] = 0
                    stats[i, STAT_TAGGED] += 1
    return cleaned_total


@njit(cache=True)
def respawn_fixed(apple_alive, apple_timer):
    """Gathering: count down dead apples' timers; revive at <= 0."""
    for k in range(apple_alive.shape[0]):
        if not apple_alive[k]:
            apple_timer[k] -= 1
            if apple_timer[k] <= 0:
                apple_alive[k] = True


@njit(cache=True)
def collect(apple_alive, apple_timer, apple_grid, pos, timeout, rewards, stats, respawn_time):
    """Index-ordered collection: the lowest id on a cell eats its apple."""
    for i in range(pos.shape[0]):
        if timeout[i] > 0:
            continue
        k = apple_grid[pos[i, 0], pos[i, 1]]
        if k >= 0 and apple_alive[k]:
            apple_alive[k] = False
            apple_timer[k] = respawn_time
            rewards[i] += 1.0
            stats[i, STAT_EATEN] += 1


@njit(cache=True)
def distance_field(walls, sources):
    """Multi-source BFS distance (4-neighbour, walls block, agents do not).

    ``sources`` is a (K, 2) array; wall cells among them are ignored, since
    the reference's forward search can never enter a wall. Unreachable
    cells are -1. Because the grid graph is undirected, the first step of
    the reference's forward BFS equals "the first neighbour in N, S, W, E
    order whose distance is one less" (see helpers.first_step).
    """
    height, width = walls.shape
    dist = np.full((height, width), -1, dtype=np.int32)
    qr = np.empty(height * width, dtype=np.int64)
    qc = np.empty(height * width, dtype=np.int64)
    head = 0
    tail = 0
    for k in range(sources.shape[0]):
        r = sources[k, 0]
        c = sources[k, 1]
        if 0 <= r < height and 0 <= c < width and not walls[r, c] and dist[r, c] < 0:
            dist[r, c] = 0
            qr[tail] = r
            qc[tail] = c
            tail += 1
    while head < tail:
        r = qr[head]
        c = qc[head]
        head += 1
        d = dist[r, c] + 1
        for k in range(4):
            if k == 0:
                nr, nc = r - 1, c
            elif k == 1:
                nr, nc = r + 1, c
            elif k == 2:
                nr, nc = r, c - 1
            else:
                nr, nc = r, c + 1
            if 0 <= nr < height and 0 <= nc < width and not walls[nr, nc] and dist[nr, nc] < 0:
                dist[nr, nc] = d
                qr[tail] = nr
                qc[tail] = nc
                tail += 1
    return dist


@njit(cache=True)
def first_step_code(dist, walls, r, c):
    """0..3 = N, S, W, E first step; 4 = already at a target; 5 = none."""
    d = dist[r, c]
    if d < 0:
        return 5
    if d == 0:
        return 4
    height, width = walls.shape
    for k in range(4):
        if k == 0:
            nr, nc = r - 1, c
        elif k == 1:
            nr, nc = r + 1, c
        elif k == 2:
            nr, nc = r, c - 1
        else:
            nr, nc = r, c + 1
        if 0 <= nr < height and 0 <= nc < width and not walls[nr, nc] and dist[nr, nc] == d - 1:
            return k
    return 5


@njit(cache=True)
def greedy_actions(dist, walls, pos, orient, timeout, out):
    """Vectorised BFS-greedy policy for all agents (the builtin fast path);
    identical to calling the per-agent policy for each agent."""
    for i in range(pos.shape[0]):
        if timeout[i] > 0:
            out[i] = 7
            continue
        k = first_step_code(dist, walls, pos[i, 0], pos[i, 1])
        if k >= 4:
            out[i] = 7
            continue
        if k == 0:
            dr, dc = -1, 0
        elif k == 1:
            dr, dc = 1, 0
        elif k == 2:
            dr, dc = 0, -1
        else:
            dr, dc = 0, 1
        o = orient[i]
        if dr == _FWD[o, 0] and dc == _FWD[o, 1]:
            out[i] = 0
        elif dr == -_FWD[o, 0] and dc == -_FWD[o, 1]:
            out[i] = 1
        elif dr == -_RIGHT[o, 0] and dc == -_RIGHT[o, 1]:
            out[i] = 2
        else:
            out[i] = 3


@njit(cache=True)
def footprint(walls, r0, c0, o, beam_len, beam_w, walls_block):
    """Beam footprint cells, lane by lane ((K, 2) array). With
    ``walls_block`` a lane stops at the first wall or the grid edge (the
    reference helpers' probe); otherwise walls and off-grid cells are skipped
    (the reference engine)."""
    height, width = walls.shape
    half = beam_w // 2
    out = np.empty((beam_len * (2 * half + 1), 2), dtype=np.int64)
    k = 0
    for w in range(-half, half + 1):
        for f in range(1, beam_len + 1):
            rr = r0 + f * _FWD[o, 0] + w * _RIGHT[o, 0]
            cc = c0 + f * _FWD[o, 1] + w * _RIGHT[o, 1]
            if rr < 0 or rr >= height or cc < 0 or cc >= width or walls[rr, cc]:
                if walls_block:
                    break
                continue
            out[k, 0] = rr
            out[k, 1] = cc
            k += 1
    return out[:k]


@njit(cache=True)
def count_in_footprint(walls, mask, r0, c0, o, beam_len, beam_w, walls_block):
    """How many footprint cells are set in ``mask`` (e.g. waste)."""
    cells = footprint(walls, r0, c0, o, beam_len, beam_w, walls_block)
    n = 0
    for k in range(cells.shape[0]):
        if mask[cells[k, 0], cells[k, 1]]:
            n += 1
    return n



@njit(cache=True)
def play_fixed_respawn(
    actions, pos, orient, timeout, hits, walls, waste, beam_mask, rewards, stats,
    apple_alive, apple_timer, apple_grid, rewards_out, timed_out_out,
    beam_len, beam_w, hits_to_tag, timeout_steps,
    fire_cost, fire_penalty, clean_cost,
    agent_collision, walls_block_beams, remove_tagged, respawn_time,
):
    """Gathering: play T recorded steps (``actions`` is T×N) in one call, exactly as T calls of the
    engine's ``step_arrays`` (same kernels, same order), writing each step's rewards and who is
    timed out. Only the fixed-respawn game has no Python-side step (Cleanup draws from the RNG)."""
    for t in range(actions.shape[0]):
        rewards[:] = 0.0
        beam_mask[:, :] = 0
        apply_actions(
            actions[t], pos, orient, timeout, hits, walls, waste, beam_mask, rewards, stats,
            beam_len, beam_w, hits_to_tag, timeout_steps, False,
            fire_cost, fire_penalty, clean_cost,
            agent_collision, walls_block_beams, remove_tagged,
        )
        respawn_fixed(apple_alive, apple_timer)
        collect(apple_alive, apple_timer, apple_grid, pos, timeout, rewards, stats, respawn_time)
        for i in range(pos.shape[0]):
            rewards_out[t, i] = rewards[i]
            timed_out_out[t, i] = timeout[i] > 0


_WARM = False


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every kernel once, with the
    dtypes the engine uses. Called before forking worker processes, so the
    workers inherit compiled code instead of each compiling it again."""
    global _WARM
    if _WARM:
        return
    # the engine marks its static arrays (walls, apple grid) read-only, which is a separate numba
    # specialisation: compile both, so no sandboxed child ever compiles (or writes a cache file)
    for read_only in (False, True):
        walls = np.zeros((3, 3), dtype=np.bool_)
        grid = np.full((3, 3), -1, dtype=np.int64)
        if read_only:
            walls.setflags(write=False)
            grid.setflags(write=False)
        waste = np.zeros((3, 3), dtype=np.bool_)
        pos = np.ones((1, 2), dtype=np.int64)
        one = np.zeros(1, dtype=np.int64)
        acts = np.full(1, 7, dtype=np.int64)
        apply_actions(
            acts, pos, one.copy(), one.copy(), one.copy(), walls, waste, np.zeros((3, 3), dtype=np.int8),
            np.zeros(1), np.zeros((1, N_STATS), dtype=np.int64), 1, 1, 1, 1, False, 0.0, 0.0, 0.0, False, False,
            False,
        )
        alive = np.ones(1, dtype=np.bool_)
        timer = np.zeros(1, dtype=np.int64)
        respawn_fixed(alive, timer)
        collect(alive, timer, grid, pos, one.copy(), np.zeros(1), np.zeros((1, N_STATS), dtype=np.int64), 1)
        field = distance_field(walls, pos)
        greedy_actions(field, walls, pos, one.copy(), one.copy(), acts)
        first_step_code(field, walls, 1, 1)
        count_in_footprint(walls, waste, 1, 1, 0, 1, 1, True)
        play_fixed_respawn(
            np.full((1, 1), 7, dtype=np.int64), pos, one.copy(), one.copy(), one.copy(), walls, waste,
            np.zeros((3, 3), dtype=np.int8), np.zeros(1), np.zeros((1, N_STATS), dtype=np.int64), alive, timer,
            grid, np.zeros((1, 1)), np.zeros((1, 1), dtype=np.bool_), 1, 1, 1, 1, 0.0, 0.0, 0.0, False, False,
            False, 1,
        )
    _WARM = True
