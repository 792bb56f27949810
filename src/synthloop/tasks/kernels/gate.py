"""End-of-run held-out gate for kernels: correctness and interleaved speedup CIs, best vs seed.

The original ran its held-out check as separate scripts, one size, in sessions whose ratios disagreed by up
to 2x. Here each held-out configuration is (1) judged for correctness with every anti-hacking check and
(2) timed interleaved against the seed in one worker, with a bootstrap CI on the speedup. The verdict flags
a held-out *failure* (the hmc case: fast in-distribution, wrong at d=24) and a held-out *regression*
(the fft3d case: the CI of the speedup lies entirely below 1).
"""

from __future__ import annotations

from typing import Any

from synthloop.tasks.kernels.catalog import get_task
from synthloop.tasks.kernels.evaluate import EvalConfig, evaluate_kernel, time_interleaved
from synthloop.tasks.kernels.promotion import bootstrap_speedup
from synthloop.tasks.kernels.spec import Size


def heldout_gate(task_name: str, seed_source: str, best_source: str, cfg: EvalConfig | None = None, *,
                 sizes: list[Size] | None = None, pairs: int = 10, seed: int = 0) -> dict[str, Any]:
    """Per held-out configuration: correctness of both kernels, speedup of best over seed with a 95% CI."""
    cfg = cfg or EvalConfig()
    task = get_task(task_name)
    sizes = sizes if sizes is not None else task.sizes(cfg.backend, "held")
    rows: list[dict[str, Any]] = []
    for p in sizes:
        row: dict[str, Any] = {"label": p.label, "params": dict(p.params)}
        best = evaluate_kernel(task_name, best_source, cfg, sizes=[p], use_ceilings=False)
        base = evaluate_kernel(task_name, seed_source, cfg, sizes=[p], use_ceilings=False)
        row["best_correct"] = bool(best["correct"])
        row["seed_correct"] = bool(base["correct"])
        if not best["correct"]:
            row["verdict"] = "FAIL"
            row["error"] = best.get("fail_reason", "")
        elif not base["correct"]:
            row["verdict"] = "seed failed"
            row["error"] = base.get("fail_reason", "")
        else:
            samples = time_interleaved(task_name, seed_source, best_source, cfg, sizes=[p], pairs=pairs)
            point, lo, hi, _ = bootstrap_speedup(samples, seed=seed)
            row.update(speedup=point, ci_low=lo, ci_high=hi)
            row["verdict"] = "regression" if hi < 1.0 else ("improvement" if lo > 1.0 else "no change")
        rows.append(row)
    return {"task": task_name, "backend": cfg.backend, "sizes": rows,
            "failed": [r["label"] for r in rows if r["verdict"] == "FAIL"],
            "regressed": [r["label"] for r in rows if r["verdict"] == "regression"]}
