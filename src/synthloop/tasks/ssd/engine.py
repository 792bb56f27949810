"""The Gathering/Cleanup engine: state, reset and the exact step order.

One class serves both games (they share every mechanic but the Cleanup
economy and waste dynamics). It owns all mutable state and the only
environment generator; policies never see it, they get a read-only
:class:`~synthloop.tasks.ssd.state.PolicyState` from :meth:`SSDEngine.snapshot`.

Step order (spec §1.5): step counter, clear rewards and beams; decrement
timeouts; apply actions in index order (compiled); then Gathering: timer
respawn and collection; Cleanup: waste spawn, apple spawn (both drawing from
the generator in the reference order) and collection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from synthloop.tasks.ssd import kernels
from synthloop.tasks.ssd.actions import STAND
from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.maps import GridMap, load_map
from synthloop.tasks.ssd.rules import Rules, get_rules

ActionsLike = Mapping[int, Any] | Sequence[Any] | np.ndarray


def apple_spawn_prob(density: float, cfg: GameConfig) -> float:
    """Cleanup p(d): linear between the restoration and depletion thresholds
    (same arithmetic as the reference, so values match to the last bit)."""
    if density >= cfg.threshold_depletion:
        return 0.0
    if density <= cfg.threshold_restoration:
        return cfg.apple_respawn_prob
    frac = (density - cfg.threshold_restoration) / (cfg.threshold_depletion - cfg.threshold_restoration)
    return (1.0 - frac) * cfg.apple_respawn_prob


def _as_action(value: Any) -> int:
    """Integer-equality semantics of the reference: 6, np.int64(6) and 6.0
    all mean BEAM; anything that is not integral becomes a no-op (-1)."""
    try:
        as_int = int(value)
    except (TypeError, ValueError, OverflowError):
        return -1
    try:
        integral = bool(as_int == value)
    except Exception:  # exotic objects with failing __eq__
        return -1
    return as_int if integral and -1 <= as_int < 1 << 31 else -1


class SSDEngine:
    """Gathering or Cleanup with the reference mechanics (``rules`` switches
    the documented fixes). State arrays are public for trusted code (the
    runner, renderers, tests); policies must use :meth:`snapshot`."""

    def __init__(
        self,
        config: GameConfig | None = None,
        rules: str | Rules = "reference",
        seed: int | None = None,
        *,
        grid: GridMap | None = None,
    ):
        """``grid`` overrides the config's named map (custom layouts, tests)."""
        self.config = config or GameConfig.for_game("gathering")
        self.rules = get_rules(rules)
        self.game = self.config.game
        self.is_cleanup = self.config.is_cleanup
        self.map: GridMap = grid or load_map(
            self.game, self.config.map_name, padding="wall" if self.rules.padding_walls else "open"
        )
        m = self.map
        self.height, self.width = m.height, m.width
        self.n_agents = self.config.n_agents
        self.n_apples = len(m.apples)
        self.walls = m.walls
        self.apple_pos = m.apples
        self.apple_grid = np.full((self.height, self.width), -1, dtype=np.int64)
        if self.n_apples:
            self.apple_grid[m.apples[:, 0], m.apples[:, 1]] = np.arange(self.n_apples)
        self.river_mask = np.zeros((self.height, self.width), dtype=bool)
        self.stream_mask = np.zeros((self.height, self.width), dtype=bool)
        if len(m.river):
            self.river_mask[m.river[:, 0], m.river[:, 1]] = True
        if len(m.stream):
            self.stream_mask[m.stream[:, 0], m.stream[:, 1]] = True
        for arr in (self.apple_grid, self.river_mask, self.stream_mask):
            arr.setflags(write=False)
        self.n_river = len(m.river)
        self._open_cells = m.open_cells(exclude_river=self.is_cleanup)
        self.rng = np.random.default_rng(seed)

        n = self.n_agents
        self.agent_pos = np.zeros((n, 2), dtype=np.int64)
        self.agent_orient = np.zeros(n, dtype=np.int64)
        self.agent_timeout = np.zeros(n, dtype=np.int64)
        self.agent_beam_hits = np.zeros(n, dtype=np.int64)
        self.apple_alive = np.ones(self.n_apples, dtype=bool)
        self.apple_timer = np.zeros(self.n_apples, dtype=np.int64)
        self.waste = np.zeros((self.height, self.width), dtype=bool)
        self.beam_mask = np.zeros((self.height, self.width), dtype=np.int8)
        self.rewards = np.zeros(n, dtype=np.float64)
        self.stats = np.zeros((n, kernels.N_STATS), dtype=np.int64)
        self._actions = np.full(n, STAND, dtype=np.int64)
        self.step_count = 0
        self.version = 0
        self.n_waste = 0
        self.waste_density = 0.0
        self.apple_prob = 0.0
        self._snapshot_cache: Any = None
        self.reset(seed)

    # ------------------------------------------------------------------ reset
    def reset(self, seed: int | None = None) -> None:
        """Reset with the reference draw order: shuffle the spawn list, then
        per agent an open cell (only beyond the spawn count) and orientation."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.step_count = 0
        self.version += 1
        available = list(self.map.spawns)
        self.rng.shuffle(available)
        for i in range(self.n_agents):
            if i < len(available):
                self.agent_pos[i] = available[i]
            else:
                self.agent_pos[i] = self._open_cells[int(self.rng.integers(len(self._open_cells)))]
            self.agent_orient[i] = int(self.rng.integers(4))
        self.agent_timeout[:] = 0
        self.agent_beam_hits[:] = 0
        self.apple_alive[:] = True
        self.apple_timer[:] = 0
        self.waste[:] = False
        if len(self.map.waste_init):
            self.waste[self.map.waste_init[:, 0], self.map.waste_init[:, 1]] = True
        self.n_waste = len(self.map.waste_init)
        self.waste_density = self._density()
        self.apple_prob = apple_spawn_prob(self.waste_density, self.config) if self.is_cleanup else 0.0
        self.beam_mask[:] = 0
        self.rewards[:] = 0.0
        self.stats[:] = 0
        self._snapshot_cache = None

    # ------------------------------------------------------------------- step
    def _density(self) -> float:
        return self.n_waste / self.n_river if self.n_river else 0.0

    def set_actions(self, actions: ActionsLike) -> np.ndarray:
        """Normalise actions to the internal int array: a missing agent
        stands (reference default); non-integral values are no-ops."""
        buf = self._actions
        if isinstance(actions, np.ndarray) and actions.dtype.kind in "iu" and actions.shape == (self.n_agents,):
            buf[:] = actions
            return buf
        buf[:] = STAND
        if isinstance(actions, Mapping):
            for i, a in actions.items():
                if 0 <= int(i) < self.n_agents:
                    buf[int(i)] = _as_action(a)
        else:
            for i, a in enumerate(actions):
                if i < self.n_agents:
                    buf[i] = _as_action(a)
        return buf

    def step_arrays(self, actions: ActionsLike) -> np.ndarray:
        """Advance one step; returns this step's reward array (a view that
        the next step overwrites). No observations are built."""
        cfg, rules = self.config, self.rules
        acts = self.set_actions(actions)
        self.step_count += 1
        self.version += 1
        self.rewards[:] = 0.0
        self.beam_mask[:] = 0
        self._snapshot_cache = None
        cleaned = kernels.apply_actions(
            acts, self.agent_pos, self.agent_orient, self.agent_timeout, self.agent_beam_hits,
            self.walls, self.waste, self.beam_mask, self.rewards, self.stats,
            cfg.beam_length, cfg.beam_width, cfg.hits_to_tag, cfg.timeout_steps, self.is_cleanup,
            cfg.fire_cost, cfg.fire_penalty, cfg.clean_cost,
            rules.agent_collision, rules.walls_block_beams, rules.remove_tagged,
        )
        if self.is_cleanup:
            self.n_waste -= cleaned
            self._cleanup_dynamics()
            respawn_time = 0
        else:
            kernels.respawn_fixed(self.apple_alive, self.apple_timer)
            respawn_time = cfg.apple_respawn_time
        kernels.collect(
            self.apple_alive, self.apple_timer, self.apple_grid, self.agent_pos, self.agent_timeout,
            self.rewards, self.stats, respawn_time,
        )
        return self.rewards

    def play_recorded(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Play T recorded steps (T×N action ids, -1 = invalid no-op) as T calls of :meth:`step_arrays`
        would; returns (rewards T×N, timed out T×N, waste density after each step). Gathering runs in
        one compiled call; Cleanup, whose dynamics draw from the RNG in Python, steps one by one."""
        acts = np.ascontiguousarray(actions, dtype=np.int64)
        steps, n = acts.shape
        rewards = np.zeros((steps, n))
        timed_out = np.zeros((steps, n), dtype=bool)
        density = np.zeros(steps)
        if self.is_cleanup or n != self.n_agents:
            for t in range(steps):
                rewards[t] = self.step_arrays(acts[t])
                timed_out[t] = self.agent_timeout > 0
                density[t] = self.waste_density
            return rewards, timed_out, density
        cfg, rules = self.config, self.rules
        kernels.play_fixed_respawn(
            acts, self.agent_pos, self.agent_orient, self.agent_timeout, self.agent_beam_hits,
            self.walls, self.waste, self.beam_mask, self.rewards, self.stats,
            self.apple_alive, self.apple_timer, self.apple_grid, rewards, timed_out,
            cfg.beam_length, cfg.beam_width, cfg.hits_to_tag, cfg.timeout_steps,
            cfg.fire_cost, cfg.fire_penalty, cfg.clean_cost,
            rules.agent_collision, rules.walls_block_beams, rules.remove_tagged, cfg.apple_respawn_time,
        )
        self.step_count += steps
        self.version += steps
        self._snapshot_cache = None
        if steps:
            self._actions[:] = acts[-1]
        density[:] = self.waste_density
        return rewards, timed_out, density

    def _occupied(self) -> np.ndarray:
        occ = np.zeros((self.height, self.width), dtype=bool)
        if self.rules.remove_tagged:
            on_board = self.agent_timeout <= 0
            occ[self.agent_pos[on_board, 0], self.agent_pos[on_board, 1]] = True
        else:
            occ[self.agent_pos[:, 0], self.agent_pos[:, 1]] = True
        return occ

    def _cleanup_dynamics(self) -> None:
        """Waste spawn then apple spawn, drawing exactly as the reference:
        one ``random()`` (only while d < depletion), one ``integers(k)`` over
        the clean, unoccupied river cells in file order, then one
        ``random()`` per dead, unoccupied apple in index order."""
        cfg, rng = self.config, self.rng
        density = self._density()
        occ = None
        if density < cfg.threshold_depletion and rng.random() < cfg.waste_spawn_prob:
            occ = self._occupied()
            river = self.map.river
            cand = np.flatnonzero(~self.waste[river[:, 0], river[:, 1]] & ~occ[river[:, 0], river[:, 1]])
            if len(cand):
                r, c = river[cand[int(rng.integers(len(cand)))]]
                self.waste[r, c] = True
                self.n_waste += 1
        density = self._density()
        p = apple_spawn_prob(density, cfg)
        self.waste_density, self.apple_prob = density, p
        if p > 0 and self.n_apples:
            if occ is None:
                occ = self._occupied()
            dead = np.flatnonzero(~self.apple_alive & ~occ[self.apple_pos[:, 0], self.apple_pos[:, 1]])
            if len(dead):
                self.apple_alive[dead[rng.random(len(dead)) < p]] = True

    # ---------------------------------------------------------------- queries
    @property
    def done(self) -> bool:
        return self.step_count >= self.config.max_steps

    def timed_out(self) -> np.ndarray:
        """Post-step "timed out" flags, the input to Peace."""
        return self.agent_timeout > 0

    def info(self, i: int) -> dict[str, Any]:
        """The reference's per-agent info dict (post-step values)."""
        out: dict[str, Any] = {"timeout": int(self.agent_timeout[i]), "beam_hits": int(self.agent_beam_hits[i])}
        if self.is_cleanup:
            out["waste_density"] = self.waste_density
            out["apple_spawn_prob"] = self.apple_prob
        return out

    def snapshot(self) -> Any:
        """Read-only :class:`PolicyState` for this step (built once, shared)."""
        if self._snapshot_cache is None:
            from synthloop.tasks.ssd.state import make_snapshot

            self._snapshot_cache = make_snapshot(self)
        return self._snapshot_cache
