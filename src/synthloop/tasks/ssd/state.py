"""Read-only snapshots handed to policies: ``policy(state, agent_id) -> int``.

The reference passed the live, mutable environment to policies, which let
them rewrite the game (spec §3.4, §6). A :class:`PolicyState` holds copies of
the state arrays marked ``writeable=False`` plus plain values; it holds no
reference to the engine or its generator, so nothing a policy does to it can
change the episode.

Fields (N agents, A apple cells, H×W grid):

* ``game`` ("gathering"/"cleanup"), ``step`` (steps taken so far),
  ``max_steps``, ``height``, ``width``, ``n_agents``, ``n_apples``,
  ``n_actions``, ``rules`` (variant name);
* ``agent_pos`` (N×2 row, col), ``agent_orient`` (N; 0=N,1=E,2=S,3=W),
  ``agent_timeout`` (N; >0 means tagged out), ``agent_beam_hits`` (N);
* ``apple_alive`` (A bool), ``apple_pos`` (A×2), ``walls`` (H×W bool);
* Cleanup: ``waste`` (H×W bool), ``river`` / ``stream`` (H×W bool masks),
  ``river_cells`` (K×2), ``waste_density`` (fraction of river polluted),
  ``apple_spawn_prob``; in Gathering these are empty/zero;
* ``beam_length``, ``beam_width``, ``hits_to_tag``, ``timeout_steps`` and
  ``params`` (the full game configuration as a dict);
* ``memory``: this agent's private dict, persistent across the steps of one
  episode and fresh for every episode (the only sanctioned place for state;
  module globals are not reset between episodes);
* ``team``: ids of the agents running the same policy as the caller (all
  agents in self-play), e.g. to split territory among teammates.

The reference's attribute names ``_apple_pos``, ``river_cells_set`` and
``stream_cells_set`` are accepted as aliases so reference-style policies port
with a parameter rename only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_FIELDS = (
    "game", "step", "max_steps", "height", "width", "n_agents", "n_apples", "n_actions", "rules",
    "agent_pos", "agent_orient", "agent_timeout", "agent_beam_hits",
    "apple_alive", "apple_pos", "walls",
    "waste", "river", "stream", "river_cells", "river_cells_set", "stream_cells_set",
    "waste_density", "apple_spawn_prob",
    "beam_length", "beam_width", "hits_to_tag", "timeout_steps", "params",
    "memory", "team", "_cache",
)


class PolicyState:
    """Immutable per-step view of the game (see the module docstring).

    Attribute assignment raises; arrays are read-only copies. ``memory`` and
    ``team`` are rebound by the runner for each agent it calls.
    """

    __slots__ = _FIELDS

    def __init__(self, **values: Any) -> None:
        for name in _FIELDS:
            object.__setattr__(self, name, values.get(name))
        if self._cache is None:
            object.__setattr__(self, "_cache", {})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"PolicyState is read-only (tried to set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("PolicyState is read-only")

    @property
    def _apple_pos(self) -> np.ndarray:
        return self.apple_pos

    def bind(self, memory: dict[str, Any], team: tuple[int, ...]) -> PolicyState:
        """Point ``memory``/``team`` at the agent about to be called (runner use)."""
        object.__setattr__(self, "memory", memory)
        object.__setattr__(self, "team", team)
        return self

    def __repr__(self) -> str:
        return f"PolicyState(game={self.game!r}, step={self.step}, n_agents={self.n_agents})"


def _frozen(arr: np.ndarray) -> np.ndarray:
    out = np.array(arr, copy=True)
    out.setflags(write=False)
    return out


class _StaticView:
    """Per-engine arrays that never change during an episode (built once)."""

    def __init__(self, engine: Any) -> None:
        m = engine.map
        self.walls = _frozen(engine.walls)
        self.apple_pos = _frozen(engine.apple_pos)
        self.river = _frozen(engine.river_mask)
        self.stream = _frozen(engine.stream_mask)
        self.river_cells = _frozen(m.river)
        self.river_set = frozenset((int(r), int(c)) for r, c in m.river)
        self.stream_set = frozenset((int(r), int(c)) for r, c in m.stream)
        self.params = engine.config.to_dict()
        self.empty_waste = _frozen(np.zeros_like(engine.waste))


def _static_for(engine: Any) -> _StaticView:
    static = getattr(engine, "_static_view", None)
    if static is None:
        static = _StaticView(engine)
        engine._static_view = static
    return static


def make_snapshot(engine: Any) -> PolicyState:
    """Copy the engine's current state into a fresh :class:`PolicyState`."""
    static = _static_for(engine)
    cfg = engine.config
    return PolicyState(
        game=engine.game,
        step=engine.step_count,
        max_steps=cfg.max_steps,
        height=engine.height,
        width=engine.width,
        n_agents=engine.n_agents,
        n_apples=engine.n_apples,
        n_actions=cfg.n_actions,
        rules=engine.rules.name,
        agent_pos=_frozen(engine.agent_pos),
        agent_orient=_frozen(engine.agent_orient),
        agent_timeout=_frozen(engine.agent_timeout),
        agent_beam_hits=_frozen(engine.agent_beam_hits),
        apple_alive=_frozen(engine.apple_alive),
        apple_pos=static.apple_pos,
        walls=static.walls,
        waste=_frozen(engine.waste) if engine.is_cleanup else static.empty_waste,
        river=static.river,
        stream=static.stream,
        river_cells=static.river_cells,
        river_cells_set=static.river_set,
        stream_cells_set=static.stream_set,
        waste_density=float(engine.waste_density),
        apple_spawn_prob=float(engine.apple_prob),
        beam_length=cfg.beam_length,
        beam_width=cfg.beam_width,
        hits_to_tag=cfg.hits_to_tag,
        timeout_steps=cfg.timeout_steps,
        params=dict(static.params),
        memory={},
        team=tuple(range(engine.n_agents)),
    )
