"""Social metrics (spec §2), computed exactly as the reference does.

Inputs are the per-step reward matrix ``rewards[t, i]`` (net step rewards)
and the post-step flags ``timed_out[t, i]`` (timeout > 0 after step t).

* Efficiency U = (Σ_i R_i) / T, the collective reward per step (not per agent).
* Equality E = 1 − Σ_i Σ_j |R_i − R_j| / (2 n Σ_i R_i) when Σ_i R_i > 0,
  and **1.0 otherwise** (the reference convention; it can also go negative).
* Sustainability S = mean over agents with any positive step of the mean
  0-based time of their positive steps; 0 if no agent ever has one.
* Peace P = (n T − Σ timed-out agent-steps) / T.

Extras beyond the reference: maximin (minimum agent return) and
``gini_shifted`` (a Gini on returns shifted to be non-negative, meaningful
even when the team total is ≤ 0, as §8.2 #5 recommends reporting).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class SocialMetrics:
    efficiency: float
    equality: float
    sustainability: float
    peace: float
    maximin: float
    returns: tuple[float, ...]
    gini_shifted: float

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["returns"] = list(self.returns)
        return out


def equality(returns: np.ndarray) -> float:
    """1 − Gini with the reference's E = 1 convention for non-positive totals."""
    returns = np.asarray(returns, dtype=np.float64)
    total = float(returns.sum())
    if total <= 0:
        return 1.0
    n = len(returns)
    diff = float(np.abs(returns[:, None] - returns[None, :]).sum())
    return 1.0 - diff / (2 * n * total)


def gini_shifted(returns: np.ndarray) -> float:
    """Gini of returns shifted so the minimum is 0 (0 = perfectly equal)."""
    returns = np.asarray(returns, dtype=np.float64)
    shifted = returns - min(0.0, float(returns.min())) if len(returns) else returns
    total = float(shifted.sum())
    if total <= 0:
        return 0.0
    n = len(shifted)
    return float(np.abs(shifted[:, None] - shifted[None, :]).sum()) / (2 * n * total)


def sustainability(rewards: np.ndarray) -> float:
    """Mean over rewarded agents of the mean time index of positive steps."""
    rewards = np.asarray(rewards)
    positive = rewards > 0
    counts = positive.sum(axis=0)
    if not counts.any():
        return 0.0
    t = np.arange(rewards.shape[0], dtype=np.float64)[:, None]
    sums = (positive * t).sum(axis=0)
    mask = counts > 0
    return float(np.mean(sums[mask] / counts[mask]))


def compute_metrics(rewards: np.ndarray, timed_out: np.ndarray) -> SocialMetrics:
    """All §2 metrics from (T, N) reward and timed-out matrices."""
    rewards = np.asarray(rewards, dtype=np.float64)
    timed_out = np.asarray(timed_out, dtype=bool)
    steps, n = rewards.shape
    returns = rewards.sum(axis=0)
    return SocialMetrics(
        efficiency=float(returns.sum()) / steps if steps else 0.0,
        equality=equality(returns),
        sustainability=sustainability(rewards),
        peace=(n * steps - int(timed_out.sum())) / steps if steps else float(n),
        maximin=float(returns.min()) if n else 0.0,
        returns=tuple(float(x) for x in returns),
        gini_shifted=gini_shifted(returns),
    )
