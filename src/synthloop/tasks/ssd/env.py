"""Gymnasium/PettingZoo-style environment for RL users (no dependency on either).

``SSDEnv.reset(seed=...)`` returns ``(observations, infos)``;
``step(actions)`` returns ``(observations, rewards, terminations,
truncations, infos)``, each a dict keyed by agent id, like a PettingZoo
``ParallelEnv``. Observations are lazy: a :class:`LazyObservations` mapping
builds an agent's RGB view only when indexed, so code that ignores them pays
nothing. ``as_pettingzoo()`` wraps the env in a real ``ParallelEnv`` when
pettingzoo is installed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.engine import ActionsLike, SSDEngine
from synthloop.tasks.ssd.observations import god_view, observation
from synthloop.tasks.ssd.rules import Rules


class LazyObservations(Mapping[int, np.ndarray]):
    """agent id → observation, computed on first access for this step."""

    def __init__(self, engine: SSDEngine) -> None:
        self._engine = engine
        self._version = engine.version
        self._cache: dict[int, np.ndarray] = {}

    def __getitem__(self, agent_id: int) -> np.ndarray:
        if not 0 <= agent_id < self._engine.n_agents:
            raise KeyError(agent_id)
        if self._engine.version != self._version:
            raise RuntimeError("observation requested after the environment moved on; index it before step()")
        if agent_id not in self._cache:
            self._cache[agent_id] = observation(self._engine, agent_id)
        return self._cache[agent_id]

    def __iter__(self) -> Iterator[int]:
        return iter(range(self._engine.n_agents))

    def __len__(self) -> int:
        return self._engine.n_agents


class SSDEnv:
    """Multi-agent Gathering/Cleanup with a Gymnasium-like API.

    >>> env = SSDEnv("gathering", map_name="small", n_agents=2)
    >>> obs, infos = env.reset(seed=0)
    >>> obs, rewards, term, trunc, infos = env.step({0: 0, 1: 7})
    """

    metadata = {"render_modes": ["rgb_array"], "name": "ssd"}

    def __init__(
        self,
        game: str = "gathering",
        *,
        map_name: str | None = None,
        n_agents: int = 10,
        max_steps: int = 1000,
        rules: str | Rules = "reference",
        seed: int | None = None,
        config: GameConfig | None = None,
    ) -> None:
        self.config = config or GameConfig.for_game(game, map_name, n_agents=n_agents, max_steps=max_steps)
        self.engine = SSDEngine(self.config, rules, seed)
        self.possible_agents = list(range(self.config.n_agents))
        self.agents = list(self.possible_agents)
        self.n_actions = self.config.n_actions
        self.observation_shape = (3, self.config.obs_ahead + 1, 2 * self.config.obs_side + 1)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[LazyObservations, dict[int, dict[str, Any]]]:
        self.engine.reset(seed)
        self.agents = list(self.possible_agents)
        return LazyObservations(self.engine), {i: self.engine.info(i) for i in self.agents}

    def step(self, actions: ActionsLike) -> tuple[
        LazyObservations, dict[int, float], dict[int, bool], dict[int, bool], dict[int, dict[str, Any]]
    ]:
        rewards = self.engine.step_arrays(actions)
        done = self.engine.done
        ids = self.possible_agents
        out = (
            LazyObservations(self.engine),
            {i: float(rewards[i]) for i in ids},
            dict.fromkeys(ids, done),
            dict.fromkeys(ids, False),
            {i: self.engine.info(i) for i in ids},
        )
        if done:
            self.agents = []
        return out

    def snapshot(self) -> Any:
        """The read-only policy view of the current state."""
        return self.engine.snapshot()

    def render(self, cell_size: int = 8) -> np.ndarray:
        return god_view(self.engine, cell_size)

    def as_pettingzoo(self) -> Any:
        """A ``pettingzoo.ParallelEnv`` wrapping this env (needs pettingzoo)."""
        from synthloop.tasks.ssd.pettingzoo_adapter import make_parallel_env

        return make_parallel_env(self)
