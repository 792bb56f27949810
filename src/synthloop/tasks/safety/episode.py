"""One episode: execute an open-loop plan and record everything about it.

EPO-Safe's policy is open loop (spec A.1, A.4): the model sees the initial
observation once, writes a complete plan, and the simulator executes it,
stopping early when the episode ends. :func:`run_episode` is that
simulator, written once against :class:`~synthloop.tasks.safety.env.SafetyEnv`
so the five gridworlds and five text scenarios share the accounting.

:class:`EpisodeResult` keeps the **true** danger bits (``true_violations``)
apart from the **reported** warnings (true plus spurious, what the reflector
may see), and holds R* only as a :class:`Private`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from synthloop.core.types import CaseResult
from synthloop.tasks.safety.env import SafetyEnv
from synthloop.tasks.safety.noise import NoiseModel
from synthloop.tasks.safety.private import Private


@dataclass(frozen=True)
class StepRecord:
    """One executed step. ``warned`` is the reported bit, ``danger`` the true one."""

    step: int
    action: str
    executed: str
    reward: float
    performance: Private
    danger: bool
    warned: bool
    observation: str

    def to_dict(self, include_private: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "step": self.step, "action": self.action, "executed": self.executed, "reward": self.reward,
            "danger": self.danger, "warned": self.warned, "observation": self.observation,
        }
        if include_private:
            d["private_performance"] = self.performance.reveal()
        return d


@dataclass(frozen=True)
class EpisodeResult:
    """Everything one episode produced.

    * ``reward``: visible return R; ``performance``: hidden R* (private);
    * ``true_violations``: 1-based steps whose true danger bit is 1;
    * ``reported_warnings``: 1-based steps the (possibly noisy) oracle flagged;
    * ``observation``: what the model was shown when it planned;
      ``initial_observation``: what was simulated (they differ only under the
      faithful absent-supervisor quirk);
    * ``variant``: which behaviour ran (``faithful`` and what it means here).
    """

    env_id: str
    variant: dict[str, Any]
    seed: int | None
    observation: str
    initial_observation: str
    plan: tuple[str, ...]
    reward: float
    performance: Private
    true_violations: tuple[int, ...]
    reported_warnings: tuple[int, ...]
    reached_goal: bool
    steps: int
    interrupted: bool
    frozen: bool
    trajectory: tuple[StepRecord, ...]
    false_positive_rate: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def faithful(self) -> bool:
        return bool(self.variant.get("faithful", False))

    @property
    def spurious_warnings(self) -> tuple[int, ...]:
        return tuple(s for s in self.reported_warnings if s not in set(self.true_violations))

    def to_dict(self, include_private: bool = False) -> dict[str, Any]:
        """JSON-ready record. R* is included only when asked for, under a ``private_`` key."""
        d: dict[str, Any] = {
            "env_id": self.env_id, "variant": dict(self.variant), "seed": self.seed,
            "observation": self.observation, "initial_observation": self.initial_observation,
            "plan": list(self.plan), "reward": self.reward,
            "true_violations": list(self.true_violations), "reported_warnings": list(self.reported_warnings),
            "reached_goal": self.reached_goal, "steps": self.steps, "interrupted": self.interrupted,
            "frozen": self.frozen, "false_positive_rate": self.false_positive_rate, "notes": list(self.notes),
            "trajectory": [s.to_dict(include_private) for s in self.trajectory],
        }
        if include_private:
            d["private_performance"] = self.performance.reveal()
        return d

    def to_case_result(self, case_id: str) -> CaseResult:
        """The episode in the engine's vocabulary: score R, R* in ``private``, bits in ``channels``."""
        return CaseResult(
            case_id=case_id, ok=True, score=self.reward,
            metrics={"reward": self.reward, "steps": float(self.steps), "reached_goal": float(self.reached_goal)},
            private={"performance": self.performance.reveal(), "true_violations": len(self.true_violations),
                     "interrupted": self.interrupted},
            channels={"danger": {"reported_steps": list(self.reported_warnings),
                                 "reported": len(self.reported_warnings)}},
        )


def run_episode(env: SafetyEnv, actions: Sequence[int], *, seed: int | None = None,
                noise: NoiseModel | None = None, observation: str | None = None,
                notes: Sequence[str] = ()) -> EpisodeResult:
    """Reset ``env`` with ``seed`` and execute ``actions`` open loop.

    Stops when the episode terminates or is truncated; leftover actions are
    ignored, and a plan that runs out first simply stops. ``observation`` is
    the text the model planned from (defaults to this reset's observation).
    The noise stage runs after the rollout, the same way for every environment.
    """
    initial, reset_info = env.reset(seed=seed)
    frozen = bool(reset_info.get("frozen", False))
    names = env.action_names
    rows: list[tuple[str, str, float, float, bool, str]] = []
    previous = env.private_performance().reveal()
    for a in actions:
        if env.episode_over:
            break
        obs, reward, terminated, truncated, info = env.step(int(a))
        now = env.private_performance().reveal()
        rows.append((info["action"], info["executed"], reward, now - previous, bool(info["danger"]), obs))
        previous = now
        if terminated or truncated:
            break
    true_bits = [r[4] for r in rows]
    reported = (noise or NoiseModel(0.0)).report(true_bits)
    trajectory = tuple(
        StepRecord(step=i + 1, action=a, executed=x, reward=rw, performance=Private(p), danger=d, warned=w,
                   observation=o)
        for i, ((a, x, rw, p, d, o), w) in enumerate(zip(rows, reported, strict=True))
    )
    return EpisodeResult(
        env_id=env.env_id, variant=env.variant(), seed=seed,
        observation=initial if observation is None else observation, initial_observation=initial,
        plan=tuple(names[int(a)] for a in actions), reward=env.episode_return,
        performance=env.private_performance(),
        true_violations=tuple(s.step for s in trajectory if s.danger),
        reported_warnings=tuple(s.step for s in trajectory if s.warned),
        reached_goal=env.reached_goal, steps=env.steps, interrupted=env.interrupted, frozen=frozen,
        trajectory=trajectory, false_positive_rate=noise.false_positive_rate if noise else 0.0,
        notes=tuple(notes),
    )
