"""PettingZoo ``ParallelEnv`` adapter, importable only with pettingzoo installed.

Agent names are ``"agent_<id>"``; spaces come from gymnasium (a pettingzoo
dependency). Kept separate so the core never imports either package.
"""

from __future__ import annotations

from typing import Any


def make_parallel_env(env: Any) -> Any:
    """Wrap an :class:`~synthloop.tasks.ssd.env.SSDEnv` as a ParallelEnv."""
    try:
        from gymnasium import spaces
        from pettingzoo import ParallelEnv
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the PettingZoo adapter needs `pip install pettingzoo`") from exc
    import numpy as np

    class SSDParallelEnv(ParallelEnv):  # type: ignore[misc]
        metadata = {"render_modes": ["rgb_array"], "name": f"ssd_{env.config.game}_v0"}

        def __init__(self) -> None:
            self.inner = env
            self.possible_agents = [f"agent_{i}" for i in env.possible_agents]
            self.agents = list(self.possible_agents)
            self._obs_space = spaces.Box(0, 255, env.observation_shape, dtype=np.uint8)
            self._act_space = spaces.Discrete(env.n_actions)

        def observation_space(self, agent: str) -> Any:
            return self._obs_space

        def action_space(self, agent: str) -> Any:
            return self._act_space

        def _named(self, d: Any) -> dict[str, Any]:
            return {f"agent_{i}": d[i] for i in env.possible_agents}

        def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
            obs, infos = env.reset(seed=seed, options=options)
            self.agents = list(self.possible_agents)
            return self._named(obs), self._named(infos)

        def step(self, actions: dict[str, int]) -> Any:
            by_id = {int(k.split("_", 1)[1]): v for k, v in actions.items()}
            obs, rew, term, trunc, infos = env.step(by_id)
            if env.engine.done:
                self.agents = []
            return tuple(self._named(x) for x in (obs, rew, term, trunc, infos))

        def render(self) -> Any:
            return env.render()

    return SSDParallelEnv()
