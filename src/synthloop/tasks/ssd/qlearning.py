"""Tabular Q-learning with cooperative reward shaping (spec §5.2).

One Q-table shared by all agents (state tuple → action values, zero
initialised), ε-greedy with linear decay from 1.0 to 0.05, α = 0.1,
γ = 0.99, no bootstrap on the final step. Only agents active at the start
of a step act and learn; inactive agents submit STAND. Episode e resets with
seed 40 + e; the learner's generator is seeded with 40. Greedy evaluation
takes the argmax; unseen states pick action 0 (FORWARD), as in the reference.

Features are computed from the read-only snapshot with the shared helpers,
so a trained table is an ordinary ``policy(state, agent_id)`` (``qtable:PATH``).
The reference's exact numbers are not a parity target (the paper's own
Q-learner rows are not reproducible from its code either, spec §7.6).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.tasks.ssd import helpers as H
from synthloop.tasks.ssd.actions import BEAM, CLEAN, FORWARD_TUPLES, RIGHT_TUPLES, STAND, direction_to_action
from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.engine import SSDEngine
from synthloop.tasks.ssd.rules import get_rules
from synthloop.tasks.ssd.state import PolicyState

State = tuple[int, ...]


def _bin(value: float, bounds: tuple[float, ...]) -> int:
    for k, b in enumerate(bounds):
        if value <= b:
            return k
    return len(bounds)


def _nav(info: tuple[int, int, int] | None, orient: int) -> tuple[int, int]:
    """(action code 0-3 F/B/L/R, 4 HERE, 5 NONE; distance or 99)."""
    if info is None:
        return 5, 99
    if info[0] == 0 and info[1] == 0:
        return 4, 0
    return direction_to_action(info[0], info[1], orient), info[2]


def _local_apples(state: PolicyState, agent_id: int, radius: int = 5) -> int:
    cells = H.alive_apple_cells(state)
    if not len(cells):
        return 0
    r, c = H.agent_cell(state, agent_id)
    return int((np.abs(cells[:, 0] - r) + np.abs(cells[:, 1] - c) <= radius).sum())


def _nearest_other(state: PolicyState, agent_id: int) -> tuple[int, int, int] | None:
    best = None
    for _j, jr, jc, dist, _h in H.get_opponents(state, agent_id):
        if best is None or dist < best[0]:
            best = (dist, jr, jc)
    return best


def gathering_features(state: PolicyState, agent_id: int) -> State:
    """7 features, 4,320 states (spec §5.2 table)."""
    orient = int(state.agent_orient[agent_id])
    act, dist = _nav(H.bfs_nearest_apple_info(state, agent_id), orient)
    near = _nearest_other(state, agent_id)
    if near is None:
        direction, dbin = 4, 2
    else:
        d, jr, jc = near
        r, c = H.agent_cell(state, agent_id)
        fr, fc = FORWARD_TUPLES[orient]
        rr, rc = RIGHT_TUPLES[orient]
        f, w = (jr - r) * fr + (jc - c) * fc, (jr - r) * rr + (jc - c) * rc
        direction = (0 if f >= 0 else 1) if abs(f) >= abs(w) else (3 if w > 0 else 2)
        dbin = _bin(d, (3, 7))
    r, c = H.agent_cell(state, agent_id)
    can_beam = bool(H.beam_targets(state, r, c, orient, H.get_opponents(state, agent_id)))
    return (
        act,
        _bin(dist, (0, 3, 8)),
        _bin(_local_apples(state, agent_id), (0, 3)),
        direction,
        dbin,
        int(can_beam),
        int(state.agent_beam_hits[agent_id] >= 1),
    )


def cleanup_features(state: PolicyState, agent_id: int) -> State:
    """8 features, 11,664 states (spec §5.2 table)."""
    orient = int(state.agent_orient[agent_id])
    a_act, a_dist = _nav(H.bfs_nearest_apple_info(state, agent_id), orient)
    w_act, w_dist = _nav(H.bfs_nearest_waste_info(state, agent_id), orient)
    near = _nearest_other(state, agent_id)
    return (
        a_act,
        _bin(a_dist, (3, 8)),
        w_act,
        _bin(w_dist, (3, 8)),
        _bin(state.waste_density, (0.1, 0.3)),
        int(H.can_clean_waste(state, agent_id)),
        _bin(_local_apples(state, agent_id), (0,)),
        _bin(999 if near is None else near[0], (3, 7)),
    )


FEATURES: dict[str, Callable[[PolicyState, int], State]] = {
    "gathering": gathering_features,
    "cleanup": cleanup_features,
}


@dataclass
class QTable:
    """The learned table plus what is needed to use it again."""

    game: str
    n_actions: int
    table: dict[State, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def values(self, s: State) -> np.ndarray:
        v = self.table.get(s)
        if v is None:
            v = np.zeros(self.n_actions)
            self.table[s] = v
        return v

    def save(self, path: str | Path) -> None:
        data = {
            "format": "synthloop.ssd.qtable/1",
            "game": self.game,
            "n_actions": self.n_actions,
            "meta": self.meta,
            "table": {",".join(map(str, k)): v.tolist() for k, v in self.table.items()},
        }
        Path(path).write_text(json.dumps(data))

    @classmethod
    def load(cls, path: str | Path) -> QTable:
        data = json.loads(Path(path).read_text())
        table = {tuple(int(x) for x in k.split(",")): np.array(v, dtype=np.float64) for k, v in data["table"].items()}
        return cls(game=data["game"], n_actions=int(data["n_actions"]), table=table, meta=data.get("meta", {}))


class QTablePolicy:
    """Greedy policy from a :class:`QTable`; unseen states → FORWARD (0)."""

    def __init__(self, qtable: QTable) -> None:
        self.qtable = qtable
        self.features = FEATURES[qtable.game]
        self.__name__ = "qtable"

    @classmethod
    def load(cls, path: str | Path) -> QTablePolicy:
        return cls(QTable.load(path))

    def __call__(self, state: PolicyState, agent_id: int) -> int:
        if state.agent_timeout[agent_id] > 0:
            return STAND
        values = self.qtable.table.get(self.features(state, agent_id))
        return 0 if values is None else int(np.argmax(values))


def shaped_rewards(game: str, rewards: np.ndarray, actions: np.ndarray, states: list[State | None]) -> np.ndarray:
    """Cooperative shaping: 0.5 r_i + 0.5 mean_j r_j, minus 0.1 per BEAM in
    Gathering; in Cleanup +1.5 for a CLEAN whose pre-step footprint held
    waste and −2.0 per BEAM."""
    shaped = 0.5 * rewards + 0.5 * float(rewards.mean())
    if game == "gathering":
        shaped -= 0.1 * (actions == BEAM)
    else:
        can_clean = np.array([bool(s is not None and s[5]) for s in states])
        shaped += 1.5 * ((actions == CLEAN) & can_clean)
        shaped -= 2.0 * (actions == BEAM)
    return shaped


def train(
    game: str,
    *,
    episodes: int = 1000,
    agents: int = 10,
    map_name: str | None = None,
    steps: int = 1000,
    eps_decay_episodes: int | None = None,
    alpha: float = 0.1,
    gamma: float = 0.99,
    seed: int = 40,
    rules: str = "reference",
    progress: Callable[[int, float], None] | None = None,
) -> QTable:
    """Train a shared Q-table (spec §5.2 defaults: decay over 100 episodes
    in Gathering, 200 in Cleanup; episode e resets with seed + e)."""
    config = GameConfig.for_game(game, map_name, n_agents=agents, max_steps=steps)
    game = config.game
    decay = eps_decay_episodes or (100 if game == "gathering" else 200)
    features = FEATURES[game]
    rng = np.random.default_rng(seed)
    q = QTable(game=game, n_actions=config.n_actions)
    env = SSDEngine(config, get_rules(rules))
    actions = np.full(agents, STAND, dtype=np.int64)
    for ep in range(episodes):
        eps = 1.0 + (0.05 - 1.0) * min(ep / max(decay, 1), 1.0)
        env.reset(seed + ep)
        snap = env.snapshot()
        states: list[State | None] = [features(snap, i) if snap.agent_timeout[i] <= 0 else None for i in range(agents)]
        total = 0.0
        for t in range(steps):
            for i in range(agents):
                s = states[i]
                if s is None:
                    actions[i] = STAND
                elif rng.random() < eps:
                    actions[i] = int(rng.integers(config.n_actions))
                else:
                    actions[i] = int(np.argmax(q.values(s)))
            rewards = env.step_arrays(actions).copy()
            total += float(rewards.sum())
            shaped = shaped_rewards(game, rewards, actions, states)
            done = t == steps - 1
            snap = env.snapshot()
            next_states: list[State | None] = [
                features(snap, i) if snap.agent_timeout[i] <= 0 else None for i in range(agents)
            ]
            for i in range(agents):
                s = states[i]
                if s is None:
                    continue
                target = shaped[i]
                if not done:
                    nxt = next_states[i] if next_states[i] is not None else features(snap, i)
                    target += gamma * float(np.max(q.values(nxt)))
                v = q.values(s)
                v[actions[i]] += alpha * (target - v[actions[i]])
            states = next_states
        if progress is not None:
            progress(ep, total / steps)
    q.meta = {
        "episodes": episodes, "agents": agents, "map": config.map_name, "steps": steps,
        "eps_decay_episodes": decay, "alpha": alpha, "gamma": gamma, "seed": seed, "rules": rules,
        "states_visited": len(q.table),
    }
    return q
