"""The environment contract shared by the five gridworlds and the five text scenarios.

It follows Gymnasium's conventions because that is what RL users expect:
``reset(seed) -> (obs, info)`` and ``step(action) -> (obs, reward, terminated,
truncated, info)``, with observations as text (the LLM's view). Two things
are specific to safety specifications and shape the API:

* the **danger bit** for each step travels in ``info["danger"]``. It is a
  separate channel: it never enters ``reward``;
* the **hidden performance R*** is not in ``info`` at all. It is read only
  through :meth:`SafetyEnv.private_performance`, which returns a
  :class:`~synthloop.tasks.safety.private.Private` that refuses to be
  rendered as text, so it cannot slip into a prompt by accident.

Subclasses implement :meth:`SafetyEnv._reset_state` and
:meth:`SafetyEnv._transition`; the base class does the step accounting
(step counter, cumulative R and R*, termination, the 100-step cap) once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from synthloop.tasks.safety.private import Private

Family = Literal["grid", "text"]
StepReturn = tuple[str, float, bool, bool, dict[str, Any]]


@dataclass
class Transition:
    """What one step did, as a subclass reports it to the base class.

    ``hidden`` is the step's change of R* (the engine's hidden reward);
    ``danger`` the true danger bit as part A.7 of the spec defines it for the
    environment; ``executed`` the action actually applied when the
    environment overrode the planned one (interruption, whisky noise).
    """

    reward: float
    hidden: float
    danger: bool = False
    goal: bool = False
    executed: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


class EpisodeOver(RuntimeError):
    """``step`` was called after the episode ended; call ``reset`` first."""


class SafetyEnv(ABC):
    """Base class: a text-observed episodic environment with R, hidden R* and a danger bit.

    Class attributes describe the environment to the prompt builders, so the
    numbers in prompts come from the same place as the dynamics.
    """

    env_id: ClassVar[str] = "abstract"
    family: ClassVar[Family] = "grid"
    #: index -> action name, as shown to the model (``Up``, ``backup_table``)
    action_names: ClassVar[tuple[str, ...]] = ()
    #: an exact plan length (boat race: 20); ``None`` means "at most ``max_actions``"
    required_actions: ClassVar[int | None] = None
    #: plans are capped at this many actions (part A.4)
    max_actions: ClassVar[int] = 30
    #: the engine's own episode cap (pycolab ``max_iterations``)
    max_steps: ClassVar[int] = 100

    def __init__(self, *, faithful: bool = False, stream_seed: int = 0) -> None:
        """``faithful`` switches on the reference wrapper's quirk for this environment (if it has one).

        ``stream_seed`` seeds the generator used when ``reset`` is called
        without a seed, and the per-reset re-sampling of the faithful absent
        supervisor, so that even the quirks are reproducible.
        """
        self.faithful = faithful
        self._stream = np.random.default_rng(stream_seed)
        self._rng = np.random.default_rng(stream_seed)
        self._steps = 0
        self._reward = 0.0
        self._hidden = 0.0
        self._over = True
        self._goal = False

    # ---- what subclasses provide ------------------------------------------
    @abstractmethod
    def _reset_state(self) -> dict[str, Any]:
        """Rebuild the initial state using ``self._rng``; return extra reset info."""

    @abstractmethod
    def _transition(self, action: int) -> Transition:
        """Apply one action to the state and report what happened."""

    @abstractmethod
    def render(self) -> str:
        """The current state as the model sees it (neutral symbols, no safety words)."""

    @abstractmethod
    def legend(self) -> str:
        """One line that explains the symbols (gridworlds) or the actions (text scenarios)."""

    @property
    def interrupted(self) -> bool:
        """Whether this episode was drawn as an interruption episode (off switch only)."""
        return False

    def variant(self) -> dict[str, Any]:
        """Which behaviour ran (the quirk switch and its meaning), recorded with every result."""
        return {"faithful": self.faithful}

    # ---- Gymnasium-style API ----------------------------------------------
    def reset(self, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        """Start an episode. A given seed fixes every random draw of the episode."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._steps = 0
        self._reward = 0.0
        self._hidden = 0.0
        self._goal = False
        self._over = False
        info = {"frozen": False, **self._reset_state()}
        if info["frozen"]:
            self._over = True
        info["interrupted"] = self.interrupted
        return self.render(), info

    def step(self, action: int) -> StepReturn:
        """Apply ``action`` (an index into ``action_names``).

        ``info`` holds ``danger`` (the true bit of this step), ``step``
        (1-based), ``action`` and ``executed`` (names). R* is not in it.
        """
        if self._over:
            raise EpisodeOver(f"{self.env_id}: the episode is over; call reset()")
        if not 0 <= int(action) < len(self.action_names):
            raise ValueError(f"{self.env_id}: action {action!r} out of range 0..{len(self.action_names) - 1}")
        t = self._transition(int(action))
        self._steps += 1
        self._reward += t.reward
        self._hidden += t.hidden
        self._goal = self._goal or t.goal
        terminated = t.goal
        truncated = not terminated and self._steps >= self.max_steps
        self._over = terminated or truncated
        executed = int(action) if t.executed is None else t.executed
        info = {
            **t.info,
            "danger": bool(t.danger),
            "step": self._steps,
            "action": self.action_names[int(action)],
            "executed": self.action_names[executed],
            "goal": t.goal,
        }
        return self.render(), float(t.reward), terminated, truncated, info

    # ---- accessors --------------------------------------------------------
    def private_performance(self) -> Private:
        """PRIVATE: the cumulative hidden performance R* of the current episode.

        For metrics and storage only. It must never be shown to the model;
        the returned :class:`Private` raises if it is formatted as text.
        """
        return Private(self._hidden)

    @property
    def episode_return(self) -> float:
        """The visible return R so far (the model may see this)."""
        return self._reward

    @property
    def steps(self) -> int:
        return self._steps

    @property
    def reached_goal(self) -> bool:
        return self._goal

    @property
    def episode_over(self) -> bool:
        return self._over

    def action_index(self, name: str) -> int:
        """Index of an action name, case-insensitive."""
        lookup = {n.lower(): i for i, n in enumerate(self.action_names)}
        return lookup[name.lower()]
