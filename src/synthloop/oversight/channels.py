"""Safety channels: danger signals recorded beside the score, never inside it.

Some tasks judge an artifact on two axes that must not be mixed: a task
reward (the objective, ``Evaluation.score``) and a *safety* signal, typically
a 1-bit "that was dangerous" flag from a monitor per step or per episode.
Folding the second into the first (a penalty term, a weighted sum) would
turn the safety signal into just more reward to trade off, and would let a
synthesizer learn the *exchange rate* instead of the rule; it would also
make it impossible to tell, afterwards, what the reward alone did. So the
two travel separately: the score is whatever the task's objective says, and
a :class:`SafetyChannel` is serialised into ``Evaluation.channels[name]``.
Nothing in this module reads or writes a score, and :func:`attach` leaves
``score`` untouched by construction.

A channel keeps **two** sets of bits apart for each unit (an episode):

* ``true_steps``: the ground truth (which steps really were violations);
* ``reported_steps``: what the possibly noisy monitor reported, the only
  thing a synthesizer may ever be shown.

A monitor with a false-positive rate p adds spurious reports; recording the
truth separately is what lets a report measure how well a method copes with
the noise. :meth:`SafetyChannel.visible` returns the view a prompt may use:
reported bits only, and, for ``granularity="episode"``, one bit per unit with
no step indices (a per-episode monitor does not say *when*).

Example::

    ch = SafetyChannel(granularity="step", false_positive_rate=0.1,
                       signals=(DangerSignal("ep0", steps=5, true_steps=(1,), reported_steps=(1, 4)),))
    ev.channels["danger"] = ch.to_dict()       # or attach(ev, ch)
    SafetyChannel.from_dict(ev.channels["danger"]).visible()
    # {'name': 'danger', 'granularity': 'step', 'units': [{'unit': 'ep0', 'reported_steps': [1, 4]}]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from synthloop.core.types import CaseResult, Evaluation

Granularity = Literal["step", "episode"]
GRANULARITIES: tuple[str, ...] = ("step", "episode")


@dataclass(frozen=True)
class DangerSignal:
    """The danger bits of one unit (an episode, a case): true and reported, 1-based step indices."""

    unit: str
    steps: int
    true_steps: tuple[int, ...] = ()
    reported_steps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for label, bits in (("true_steps", self.true_steps), ("reported_steps", self.reported_steps)):
            if any(not 1 <= s <= max(self.steps, 0) for s in bits):
                raise ValueError(f"{label} {list(bits)} out of range 1..{self.steps} for unit {self.unit!r}")

    @property
    def violated(self) -> bool:
        """The true episode-level bit: at least one true violation."""
        return bool(self.true_steps)

    @property
    def reported(self) -> bool:
        """The reported episode-level bit: at least one warning (true or spurious)."""
        return bool(self.reported_steps)

    @property
    def spurious_steps(self) -> tuple[int, ...]:
        """Reported steps that were not true violations (false positives)."""
        truth = set(self.true_steps)
        return tuple(s for s in self.reported_steps if s not in truth)

    def to_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "steps": self.steps, "true_steps": list(self.true_steps),
                "reported_steps": list(self.reported_steps)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DangerSignal:
        return cls(unit=str(d["unit"]), steps=int(d["steps"]), true_steps=tuple(int(s) for s in d["true_steps"]),
                   reported_steps=tuple(int(s) for s in d["reported_steps"]))


@dataclass(frozen=True)
class SafetyChannel:
    """A named danger channel over several units, with the monitor's noise level and granularity.

    ``granularity`` is what a synthesizer may be shown (``step``: which steps
    were flagged; ``episode``: only whether a unit was flagged). The stored
    record always keeps step indices, for analysis.
    """

    name: str = "danger"
    granularity: Granularity = "step"
    false_positive_rate: float = 0.0
    signals: tuple[DangerSignal, ...] = field(default_factory=tuple)
    #: whether any of it may reach a synthesizer (False for controls such as reward-only reflection)
    shown: bool = True

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {self.granularity!r}")
        if not 0.0 <= self.false_positive_rate <= 1.0:
            raise ValueError(f"false_positive_rate must be in [0, 1], got {self.false_positive_rate}")

    # ---- summaries (for metrics and reports; none of them is a score) ----
    @property
    def true_violations(self) -> int:
        return sum(len(s.true_steps) for s in self.signals)

    @property
    def reported_warnings(self) -> int:
        return sum(len(s.reported_steps) for s in self.signals)

    @property
    def spurious_warnings(self) -> int:
        return sum(len(s.spurious_steps) for s in self.signals)

    @property
    def steps(self) -> int:
        return sum(s.steps for s in self.signals)

    @property
    def violation_rate(self) -> float:
        """Fraction of units with at least one true violation (0 when there are no units)."""
        return sum(s.violated for s in self.signals) / len(self.signals) if self.signals else 0.0

    @property
    def observed_false_positive_rate(self) -> float | None:
        """Spurious reports per step that was not a true violation (the monitor's realised p)."""
        clean = self.steps - self.true_violations
        return self.spurious_warnings / clean if clean else None

    def summary(self) -> dict[str, float | int | None]:
        return {"units": len(self.signals), "steps": self.steps, "true_violations": self.true_violations,
                "reported_warnings": self.reported_warnings, "spurious_warnings": self.spurious_warnings,
                "violation_rate": self.violation_rate,
                "observed_false_positive_rate": self.observed_false_positive_rate}

    # ---- views and serialisation -----------------------------------------
    def visible(self) -> dict[str, Any]:
        """What a prompt may show: reported bits only; no step indices at episode granularity; nothing if not shown."""
        units: list[dict[str, Any]] = []
        for s in self.signals if self.shown else ():
            if self.granularity == "step":
                units.append({"unit": s.unit, "reported_steps": list(s.reported_steps)})
            else:
                units.append({"unit": s.unit, "reported": s.reported})
        return {"name": self.name, "granularity": self.granularity, "units": units}

    def to_dict(self) -> dict[str, Any]:
        """The stored record (``Evaluation.channels[name]``): both bit sets, the noise level, a summary."""
        return {"kind": "safety", "name": self.name, "granularity": self.granularity, "shown": self.shown,
                "false_positive_rate": self.false_positive_rate, "summary": self.summary(),
                "signals": [s.to_dict() for s in self.signals]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SafetyChannel:
        return cls(name=str(d.get("name", "danger")), granularity=d.get("granularity", "step"),
                   false_positive_rate=float(d.get("false_positive_rate", 0.0)),
                   signals=tuple(DangerSignal.from_dict(s) for s in d.get("signals", [])),
                   shown=bool(d.get("shown", True)))

    def for_unit(self, unit: str) -> SafetyChannel:
        """The same channel restricted to one unit (for a per-case record)."""
        return SafetyChannel(self.name, self.granularity, self.false_positive_rate,
                             tuple(s for s in self.signals if s.unit == unit), self.shown)


def attach(target: Evaluation | CaseResult, channel: SafetyChannel) -> None:
    """Store ``channel`` in ``target.channels[channel.name]``. Never touches ``score``: that is the point."""
    target.channels[channel.name] = channel.to_dict()


def read(source: Evaluation | CaseResult, name: str = "danger") -> SafetyChannel | None:
    """The channel stored under ``name``, or ``None`` when there is none (or it is not a safety channel)."""
    raw = source.channels.get(name)
    if not isinstance(raw, dict) or raw.get("kind") != "safety":
        return None
    return SafetyChannel.from_dict(raw)


__all__ = ["GRANULARITIES", "DangerSignal", "Granularity", "SafetyChannel", "attach", "read"]
