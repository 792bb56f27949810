"""Roofline fitness: fraction of a per-size attainable ceiling, combined by geometric mean.

Per size: ``t_min = max(F / P_peak, B / BW_level(working set))`` from the task's FLOP and byte models and
the machine's measured ceilings, i.e. attainable performance ``min(P_peak, AI * BW_level)``. The fraction
is ``t_min / t_median``. It cannot exceed 1 for an honest kernel under an honest model, so a raw fraction
above ``IMPLAUSIBLE`` is flagged for review (cache replay, skipped work, a wrong model) and the fraction
used for scoring is capped at 1: scores above 1 are impossible by construction.

The score over sizes is the geometric mean of the fractions, zero when any size is wrong. A candidate may
also be required not to regress any size below ``0.95 x`` the incumbent (:func:`regressions`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from synthloop.tasks.kernels.ceilings import Ceilings
from synthloop.tasks.kernels.spec import KernelTask, Size

IMPLAUSIBLE = 1.10
NON_REGRESSION = 0.95
FLOOR = 1e-12


@dataclass
class SizeFitness:
    t_median_s: float
    t_min_s: float
    bound: str  # "bandwidth" or "compute"
    level_bytes: int  # footprint of the memory level used for the bandwidth bound
    achieved: float  # in the task's unit (GB/s or GFLOP/s)
    unit: str
    ceiling: float  # attainable, in the same unit
    raw_fraction: float
    fraction: float
    implausible: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def attainable_time(task: KernelTask, p: Size, ceilings: Ceilings) -> tuple[float, str, int]:
    """(t_min seconds, which bound binds, memory level footprint)."""
    bw, level = ceilings.bandwidth_for(task.working_set(p))
    t_bw = task.bytes_moved(p) / bw
    t_fl = task.flops(p) / ceilings.peak_flops
    return (t_bw, "bandwidth", level) if t_bw >= t_fl else (t_fl, "compute", level)


def size_fitness(task: KernelTask, p: Size, times_s: list[float], ceilings: Ceilings) -> SizeFitness:
    t = statistics.median(times_s)
    t_min, bound, level = attainable_time(task, p, ceilings)
    raw = t_min / t if t > 0 else math.inf
    scale = 1e9
    achieved = task.work(p) / t / scale if t > 0 else math.inf
    ceiling = task.work(p) / t_min / scale if t_min > 0 else math.inf
    return SizeFitness(t_median_s=t, t_min_s=t_min, bound=bound, level_bytes=level, achieved=achieved,
                       unit=task.unit, ceiling=ceiling, raw_fraction=raw, fraction=min(1.0, raw),
                       implausible=raw > IMPLAUSIBLE)


def gmean_score(fractions: Sequence[float | None]) -> float:
    """Geometric mean of per-size fractions; 0 if any size failed (None) or there are none."""
    if not fractions or any(f is None for f in fractions):
        return 0.0
    return math.exp(statistics.fmean(math.log(max(float(f), FLOOR)) for f in fractions if f is not None))


def regressions(candidate: dict[str, float], incumbent: dict[str, float],
                threshold: float = NON_REGRESSION) -> list[str]:
    """Labels of sizes where the candidate's fraction is below ``threshold x`` the incumbent's."""
    return [k for k, inc in incumbent.items() if k in candidate and candidate[k] < threshold * inc]
