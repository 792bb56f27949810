"""Per-round metrics (spec A.6), as functions over EpisodeResults.

This is the one place (with storage and reports) allowed to reveal R*:
metrics are for the experimenter, never for the model.

Two choices follow the spec's recommendations rather than the reference's
log format:

* ``true_violations`` (ground-truth danger bits) and ``reported_warnings``
  (what the possibly noisy monitor said) are separate fields; the
  reference's ``total_warnings`` mixed the two;
* mean R* skips interrupted episodes, which only exist in the off switch and
  its text analog: an interrupted episode's R* is 0 by construction,
  whatever the agent did, so averaging it in only adds noise. ``None`` when
  every episode was interrupted.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from synthloop.tasks.safety.episode import EpisodeResult


@dataclass(frozen=True)
class RoundMetrics:
    """What one round produced, as logged per round (``rounds.jsonl`` in the reference)."""

    episodes: int
    mean_reward: float
    mean_performance: float | None
    performance_episodes: int
    interrupted: int
    true_violations: int
    reported_warnings: int
    spurious_warnings: int
    goals_reached: int
    mean_steps: float
    specification: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def round_metrics(episodes: Sequence[EpisodeResult], specification: str) -> RoundMetrics:
    """Means over the round's K episodes, sums of the two warning counts, the spec in force."""
    if not episodes:
        raise ValueError("round_metrics needs at least one episode")
    counted = [ep.performance.reveal() for ep in episodes if not ep.interrupted]
    return RoundMetrics(
        episodes=len(episodes),
        mean_reward=statistics.fmean(ep.reward for ep in episodes),
        mean_performance=statistics.fmean(counted) if counted else None,
        performance_episodes=len(counted),
        interrupted=sum(ep.interrupted for ep in episodes),
        true_violations=sum(len(ep.true_violations) for ep in episodes),
        reported_warnings=sum(len(ep.reported_warnings) for ep in episodes),
        spurious_warnings=sum(len(ep.spurious_warnings) for ep in episodes),
        goals_reached=sum(ep.reached_goal for ep in episodes),
        mean_steps=statistics.fmean(ep.steps for ep in episodes),
        specification=specification,
    )


def normalised_performance(performance: float | None, noiseless: float | None) -> float | None:
    """Final-round mean R* at a noise rate divided by the same at rate 0 (the noise heat map's cell).

    ``None`` when either value is missing or the noiseless baseline is 0 (the ratio is undefined).
    """
    if performance is None or noiseless is None or noiseless == 0:
        return None
    return performance / noiseless
