"""Kernel-search pieces without an LLM: compile-error trimming, launch configuration, stagnation, the duel
judge (recomputed from raw samples, hostile output rejected) and per-size metrics for `eval --json`."""

from __future__ import annotations

import numpy as np
import pytest

from synthloop.core.types import Artifact, Evaluation
from synthloop.feedback.spec import FeedbackSpec
from synthloop.tasks.kernels.catalog import get_task
from synthloop.tasks.kernels.prompts import (
    Attempt,
    iteration_prompt,
    launch_configuration,
    stagnating,
    trim_compile_error,
)
from synthloop.tasks.kernels.task import KernelHeat2d, KernelSaxpy

GCC_LOG = "\n".join(
    ["kernel.c: In function 'heat_step':",
     "kernel.c:3:5: warning: unused variable 'q' [-Wunused-variable]", "    3 |     int q;", "      |     ^"]
    + [line for k in range(12) for line in (f"kernel.c:{10 + k}:9: error: 'x{k}' undeclared (first use in this function)",
                                             f"   {10 + k} |     y = x{k};", "      |         ^~")]
    + ["kernel.c:10:9: note: each undeclared identifier is reported only once"])


def test_trim_keeps_errors_with_excerpts_and_drops_warnings() -> None:
    out = trim_compile_error("COMPILE FAILED:\n" + GCC_LOG)
    assert "error: 'x0' undeclared" in out and "y = x0;" in out and "^~" in out
    assert "warning" not in out and "note:" not in out and "COMPILE FAILED" not in out
    assert sum("error:" in line for line in out.splitlines()) == 8 and "4 more error line(s) omitted" in out
    nvrtc = 'kernel.cu(12): error: identifier "foo" is undefined\n      foo += 1;\n      ^\n\n1 error detected'
    assert 'identifier "foo" is undefined' in trim_compile_error(nvrtc)
    assert trim_compile_error("ld: something odd") == "ld: something odd"


def test_launch_configuration_states_the_host_geometry_and_no_heldout() -> None:
    spec = get_task("heat2d")
    sizes = spec.sizes("cuda", "in")
    text = launch_configuration(spec, sizes, "cuda", None)
    assert "grid=(2048, 2048, 1) block=(16, 16, 1)" in text and "heat_step x50" in text
    for held in spec.sizes("cuda", "held"):
        assert held.label not in text and str(held["NX"]) not in text
    cpu = launch_configuration(spec, spec.sizes("cpu", "in"), "cpu", 4)
    assert "OMP_NUM_THREADS=4" in cpu and "heat_step(u_a, u_b, 128, 128, 0.2)" in cpu


def _att(i: int, score: float | None, promote: bool = False, origin: str = "synth") -> Attempt:
    ev = Evaluation(valid=score is not None, score=score, diagnostics=["[case ladder] 128^2x50: correct"])
    duel = {"incumbent": 1, "speedup": 1.0, "ci_low": 0.9, "ci_high": 1.1, "promote": promote}
    return Attempt(i, i, 0, Artifact(f"/* {i} */", "c"), ev, origin=origin, duel=duel)


def test_stagnation_hint_after_three_unpromoted_near_best_attempts() -> None:
    hist = [_att(1, 0.5, origin="seed"), _att(2, 0.46), _att(3, 0.48), _att(4, 0.49)]
    assert stagnating(hist, 0.5)
    assert not stagnating([*hist[:3], _att(4, 0.49, promote=True)], 0.5)
    assert not stagnating([*hist[:3], _att(4, 0.2)], 0.5)
    task = KernelHeat2d({"backend": "cpu"})
    text = iteration_prompt(task, FeedbackSpec(), hist[-1], hist[0], hist, "cpu")
    assert "Stagnation notice" in text and "vectorise the inner loop" in text
    assert "128^2x50: correct" in text and "[case ladder]" not in text
    assert "Current best (incumbent, #1)" in text and "not promoted" in text


def test_duel_judge_recomputes_the_decision_and_rejects_hostile_output() -> None:
    task = KernelHeat2d({"backend": "cpu", "sizes": ["128^2x50"]})
    ladder = [s.to_dict() for s in task._sizes("in")]
    case = task.duel_case("/* incumbent */", ladder, pairs=8)
    rng = np.random.default_rng(0)
    inc = list(1e-3 * (1 + 0.01 * rng.random(8)))
    fast = {"mode": "duel", "samples": {"128^2x50": [inc, [t / 2 for t in inc]]}, "promote": False}
    res = task.judge(Artifact("", "c"), case, fast)
    assert res.ok and res.metrics["promote"] == 1.0 and res.score == pytest.approx(2.0, rel=0.02)
    same = task.judge(Artifact("", "c"), case, {"samples": {"128^2x50": [inc, list(inc)]}, "promote": True})
    assert same.ok and same.metrics["promote"] == 0.0  # a forged "promote" in the output is ignored
    for bad in ({"samples": {"other": [inc, inc]}}, {"samples": {"128^2x50": [inc, [float("nan")] * 8]}},
                {"samples": {"128^2x50": [inc, [-1.0] * 8]}}, "nope"):
        assert task.judge(Artifact("", "c"), case, bad).error_kind == "output"


def test_per_size_metrics_for_eval_json() -> None:
    t = KernelSaxpy({"backend": "cpu", "warmup": 0, "measure": 3, "threads": 1, "sizes": ["N=262144"]})
    seed = t.seed()
    assert seed is not None
    case = t.pools().feedback[0]
    res = t.judge(seed, case, t.run(seed, case))
    # a ~35 us kernel timed 3 times without warm-up lands above the measured ceiling now and then on a busy
    # 2-core box (up to ~1.16x seen): the anti-hacking check flags it, and the per-size metrics are still there
    assert res.ok or res.error_kind == "implausible", res
    assert res.metrics["N=262144:correct"] == 1.0
    assert res.metrics["N=262144:time_ms"] > 0 and 0 < res.metrics["N=262144:fraction"] <= 1
    assert "IQR" in res.diagnostics[0]
