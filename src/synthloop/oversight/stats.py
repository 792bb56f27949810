"""Small statistics shared by reports, tables and keep rules (one t-quantile for the whole package)."""

from __future__ import annotations

import math
import statistics

from scipy import stats as _stats


def t_quantile(df: int, q: float = 0.975) -> float:
    """Student-t quantile with ``df`` degrees of freedom (two-sided 95 % intervals use q = 0.975)."""
    return float(_stats.t.ppf(q, df))


def mean_ci(xs: list[float], q: float = 0.975) -> tuple[float, float]:
    """Mean and half-width of the two-sided t interval (half-width 0 for a single value; nan if empty)."""
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    if not xs:
        return math.nan, math.nan
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, 0.0
    return m, t_quantile(len(xs) - 1, q) * statistics.stdev(xs) / math.sqrt(len(xs))
