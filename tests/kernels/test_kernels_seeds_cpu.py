"""Every CPU seed kernel passes its checker on every in-distribution and held-out CPU size."""

from __future__ import annotations

import pytest

from synthloop.tasks.kernels import TASK_NAMES, get_task
from synthloop.tasks.kernels.evaluate import EvalConfig, evaluate_kernel


@pytest.mark.parametrize("name", TASK_NAMES)
def test_seed_passes_every_cpu_size(name: str, fast_cfg: EvalConfig) -> None:
    t = get_task(name)
    sizes = t.sizes("cpu", "in") + t.sizes("cpu", "held")
    res = evaluate_kernel(name, t.seed_source("cpu"), fast_cfg, sizes=sizes)
    assert res["compile_ok"], res.get("fail_reason")
    bad = [(r["label"], r.get("error")) for r in res["sizes"] if not r["correct"]]
    assert not bad, bad
    assert res["correct"] and 0 < res["score"] <= 1.0
    assert res["warnings"] == [], "seeds must not trip the static checker's warnings"
    for row in res["sizes"]:
        assert len(row["times_s"]) == fast_cfg.measure, "all samples are kept"
        assert 0 < row["fitness"]["fraction"] <= 1.0
        assert row["info"]["threads"] == 1
