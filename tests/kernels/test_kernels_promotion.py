"""Noise-aware promotion: interleaved timing, bootstrap CI on per-size log ratios, non-regression."""

from __future__ import annotations

import numpy as np

from synthloop.tasks.kernels import get_task
from synthloop.tasks.kernels.evaluate import EvalConfig, time_interleaved
from synthloop.tasks.kernels.promotion import bootstrap_speedup, decide
from synthloop.tasks.kernels.spec import Size


def test_identical_kernel_is_refused_in_at_least_95_of_100_trials() -> None:
    """Real interleaved timings of the saxpy seed against a byte-different copy of itself (a separate
    shared object), split into 100 consecutive trials of 10 pairs per size."""
    src = get_task("saxpy").seed_source("cpu")
    sizes = [Size("4K", {"N": 1 << 12}), Size("16K", {"N": 1 << 14}), Size("64K", {"N": 1 << 16})]
    samples = time_interleaved("saxpy", src, src + "\n/* identical */\n",
                               EvalConfig(backend="cpu", warmup=3, threads=1), sizes=sizes, pairs=1000)
    promoted = 0
    for k in range(100):
        trial = {label: (a[10 * k:10 * k + 10], b[10 * k:10 * k + 10]) for label, (a, b) in samples.items()}
        promoted += decide(trial, seed=k, n_boot=400).promote
    assert promoted <= 5, f"identical kernel promoted in {promoted}/100 trials"


def _synthetic(rng: np.random.Generator, speedup: float, n: int = 12, sizes: int = 3,
               noise: float = 0.05) -> dict[str, tuple[list[float], list[float]]]:
    out = {}
    for s in range(sizes):
        drift = np.exp(rng.normal(0, 0.2, n))  # shared drift: what interleaving cancels
        inc = 1e-3 * drift * np.exp(rng.normal(0, noise, n))
        cand = 1e-3 / speedup * drift * np.exp(rng.normal(0, noise, n))
        out[f"s{s}"] = (inc.tolist(), cand.tolist())
    return out


def test_synthetic_identical_refused_and_real_speedup_promoted() -> None:
    rng = np.random.default_rng(1)
    refused = sum(not decide(_synthetic(rng, 1.0), seed=k, n_boot=400).promote for k in range(100))
    assert refused >= 95
    promoted = sum(decide(_synthetic(rng, 1.15), seed=k, n_boot=400).promote for k in range(50))
    assert promoted >= 45, "a 15% speedup under 5% noise is detected"


def test_small_speedup_below_delta_is_not_promoted() -> None:
    rng = np.random.default_rng(2)
    assert sum(decide(_synthetic(rng, 1.01, noise=0.002), seed=k).promote for k in range(20)) == 0


def test_non_regression_blocks_a_gmean_win_that_loses_one_size() -> None:
    rng = np.random.default_rng(3)
    s = _synthetic(rng, 1.5, noise=0.01)
    inc, cand = s["s2"]
    s["s2"] = (inc, [c * 1.5 * 1.2 for c in cand])  # size s2 becomes 20% slower than the incumbent
    d = decide(s)
    assert not d.promote and d.regressions == ["s2"] and "regresses" in d.reason
    assert d.speedup > 1.0, "the geometric mean alone would have promoted it"


def test_bootstrap_ci_brackets_the_point_estimate() -> None:
    rng = np.random.default_rng(4)
    point, lo, hi, per = bootstrap_speedup(_synthetic(rng, 1.3), seed=0)
    assert lo <= point <= hi and 1.2 < point < 1.4 and set(per) == {"s0", "s1", "s2"}
