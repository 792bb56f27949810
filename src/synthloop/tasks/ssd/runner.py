"""Episode runner: call policies, step the engine, record what metrics need.

Calling convention (the reference's generic runner, spec §3.5): before each
step, every agent's policy is called once in index order, timed-out agents
included (builtins return STAND for them; the engine ignores their action).
All agents of a step see the same snapshot, taken before anyone acts.

Random agents (:class:`RandomPolicy`) draw ``integers(n)`` from the
environment's generator when ``rules.shared_policy_rng`` (the reference
order, needed for Cleanup parity), else from their own generator seeded by
(episode seed, agent id), so adding random agents no longer perturbs the
environment's stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthloop.tasks.ssd import kernels
from synthloop.tasks.ssd.actions import STAND
from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.engine import SSDEngine, _as_action
from synthloop.tasks.ssd.metrics import SocialMetrics, compute_metrics
from synthloop.tasks.ssd.policies import Policy, RandomPolicy, bfs_policy
from synthloop.tasks.ssd.rules import Rules, get_rules
from synthloop.tasks.ssd.state import PolicyState

StepHook = Callable[[SSDEngine, np.ndarray], None]


@dataclass
class EpisodeResult:
    """One episode: per-step rewards/flags, metrics and behaviour counts."""

    seed: int
    rewards: np.ndarray  # (T, N)
    timed_out: np.ndarray  # (T, N) post-step timeout > 0
    metrics: SocialMetrics
    behaviour: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        m = self.metrics
        return {
            "seed": self.seed,
            "efficiency": m.efficiency,
            "equality": m.equality,
            "sustainability": m.sustainability,
            "peace": m.peace,
            "maximin": m.maximin,
            "returns": list(m.returns),
            "gini_shifted": m.gini_shifted,
            **self.behaviour,
        }


def _policy_rng(seed: int, agent: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5EED, agent])


def _teams(policies: Sequence[Policy]) -> list[tuple[int, ...]]:
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(policies):
        groups.setdefault(id(p), []).append(i)
    return [tuple(groups[id(p)]) for p in policies]


def run_episode(
    config: GameConfig,
    policies: Sequence[Policy],
    seed: int,
    rules: str | Rules = "reference",
    *,
    on_step: StepHook | None = None,
    engine: SSDEngine | None = None,
    call_timed_out: bool = True,
) -> EpisodeResult:
    """Play one episode of ``config.max_steps`` steps with one policy per
    agent (the same object for agents that share a policy: that defines
    ``state.team``). ``on_step(engine, actions)`` is called after each step.

    ``call_timed_out=False`` is the reference Cleanup script's convention:
    timed-out agents are given STAND without calling their policy (so random
    agents draw nothing for them)."""
    rules = get_rules(rules)
    n = config.n_agents
    if len(policies) != n:
        raise ValueError(f"need {n} policies, got {len(policies)}")
    env = engine if engine is not None else SSDEngine(config, rules)
    env.reset(seed)
    steps = config.max_steps
    rewards = np.zeros((steps, n), dtype=np.float64)
    timed_out = np.zeros((steps, n), dtype=bool)
    density = np.zeros(steps, dtype=np.float64)
    teams = _teams(policies)
    memories: list[dict[str, Any]] = [{} for _ in range(n)]
    random_n: list[int] = []
    for i, p in enumerate(policies):
        if isinstance(p, RandomPolicy):
            random_n.append(p.n_actions or config.n_actions)
            if not rules.shared_policy_rng:
                memories[i]["rng"] = _policy_rng(seed, i)
        else:
            random_n.append(0)
    fast_bfs = all(p is bfs_policy for p in policies)  # same actions either way
    actions = np.full(n, STAND, dtype=np.int64)
    invalid = np.zeros(n, dtype=np.int64)
    for t in range(steps):
        if fast_bfs:
            _fast_greedy(env, actions)
        else:
            state: PolicyState | None = None
            for i in range(n):
                if not call_timed_out and env.agent_timeout[i] > 0:
                    actions[i] = STAND
                    continue
                if random_n[i] and rules.shared_policy_rng:
                    actions[i] = int(env.rng.integers(random_n[i]))
                    continue
                if state is None:
                    state = env.snapshot()
                a = _as_action(policies[i](state.bind(memories[i], teams[i]), i))
                if not 0 <= a < config.n_actions:
                    invalid[i] += 1
                actions[i] = a
        rewards[t] = env.step_arrays(actions)
        timed_out[t] = env.agent_timeout > 0
        density[t] = env.waste_density
        if on_step is not None:
            on_step(env, actions)
    metrics = compute_metrics(rewards, timed_out)
    stats = env.stats
    behaviour: dict[str, Any] = {
        "beams_fired": int(stats[:, kernels.STAT_BEAMS].sum()),
        "agents_tagged": int(stats[:, kernels.STAT_TAGGED].sum()),
        # executed CLEANs; the reference script counted chosen ones, including
        # a few lost to a same-step tag by a lower-index agent
        "clean_actions": int(stats[:, kernels.STAT_CLEANS].sum()),
        "waste_cleaned": int(stats[:, kernels.STAT_CLEANED].sum()),
        "apples_eaten": int(stats[:, kernels.STAT_EATEN].sum()),
        "invalid_actions": int(invalid.sum()),
    }
    if config.is_cleanup:
        behaviour["mean_waste_density"] = float(density.mean())
    return EpisodeResult(seed=int(seed), rewards=rewards, timed_out=timed_out, metrics=metrics, behaviour=behaviour)


def _fast_greedy(env: SSDEngine, out: np.ndarray) -> None:
    """All-BFS fast path: one distance field, one compiled pass. Produces
    exactly the actions ``bfs_policy`` would (tested)."""
    cells = np.ascontiguousarray(env.apple_pos[env.apple_alive])
    field_ = kernels.distance_field(env.walls, cells)
    kernels.greedy_actions(field_, env.walls, env.agent_pos, env.agent_orient, env.agent_timeout, out)
