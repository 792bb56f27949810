"""Noise-aware promotion: bootstrap CI on per-size log time ratios from interleaved timings.

The original promoted on a strict ``>`` between two medians of 10 taken at different moments, and its own
seed varied 1.35-1.57x across runs, so most small "wins" were noise. Here:

1. incumbent and candidate are timed **interleaved in one process** (pairs in random AB/BA order), so a
   drift hits both;
2. per size the statistic is the median of the per-pair log ratios ``log(t_incumbent / t_candidate)``
   (positive = the candidate is faster); the speedup over sizes is the geometric mean, i.e. the mean of
   the per-size statistics;
3. a percentile bootstrap (pairs resampled within each size) gives a CI for that geometric mean;
4. **promote** only if the CI's lower bound is above ``1 + delta`` (default 2%) *and* no size's point
   estimate is below ``0.95`` (the per-size non-regression constraint).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

DELTA = 0.02
NON_REGRESSION = 0.95


@dataclass
class PromotionDecision:
    promote: bool
    speedup: float  # geometric-mean point estimate (incumbent time / candidate time)
    ci_low: float
    ci_high: float
    per_size: dict[str, float] = field(default_factory=dict)
    regressions: list[str] = field(default_factory=list)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _per_size_logs(inc: list[float], cand: list[float]) -> np.ndarray:
    n = min(len(inc), len(cand))
    if n == 0:
        raise ValueError("no paired samples")
    a = np.asarray(inc[:n], dtype=np.float64)
    b = np.asarray(cand[:n], dtype=np.float64)
    if (a <= 0).any() or (b <= 0).any():
        raise ValueError("timings must be positive")
    return np.log(a) - np.log(b)


def bootstrap_speedup(samples: dict[str, tuple[list[float], list[float]]], *, n_boot: int = 2000,
                      alpha: float = 0.05, seed: int = 0) -> tuple[float, float, float, dict[str, float]]:
    """(point, ci_low, ci_high, per-size point) of the geometric-mean speedup of candidate over incumbent.

    ``samples[label] = (incumbent_times, candidate_times)``, paired in acquisition order.
    """
    rng = np.random.default_rng(seed)
    logs = {k: _per_size_logs(inc, cand) for k, (inc, cand) in samples.items()}
    per_size = {k: float(np.median(v)) for k, v in logs.items()}
    point = float(np.mean(list(per_size.values())))
    boots = np.zeros(n_boot)
    for v in logs.values():
        idx = rng.integers(0, len(v), size=(n_boot, len(v)))
        boots += np.median(v[idx], axis=1)
    boots /= len(logs)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return math.exp(point), math.exp(float(lo)), math.exp(float(hi)), {k: math.exp(v) for k, v in per_size.items()}


def decide(samples: dict[str, tuple[list[float], list[float]]], *, delta: float = DELTA,
           non_regression: float = NON_REGRESSION, n_boot: int = 2000, alpha: float = 0.05,
           seed: int = 0) -> PromotionDecision:
    """Apply the promotion rule to interleaved timings (see the module docstring)."""
    point, lo, hi, per = bootstrap_speedup(samples, n_boot=n_boot, alpha=alpha, seed=seed)
    regs = [k for k, s in per.items() if s < non_regression]
    if regs:
        reason = f"regresses {', '.join(regs)} below {non_regression:.2f}x the incumbent"
        return PromotionDecision(False, point, lo, hi, per, regs, reason)
    if lo > 1.0 + delta:
        return PromotionDecision(True, point, lo, hi, per, [], f"CI low {lo:.3f} > {1 + delta:.3f}")
    return PromotionDecision(False, point, lo, hi, per, [],
                             f"not significant: CI [{lo:.3f}, {hi:.3f}] does not clear {1 + delta:.3f}")
