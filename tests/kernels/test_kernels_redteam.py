"""Red-team kernels: each anti-hacking check fires on the kernel built to defeat it; seeds trip none.

| kernel                  | hack                                | check that fires                 |
|-------------------------|-------------------------------------|----------------------------------|
| saxpy_zeros.c           | write zeros                         | checker vs fresh reference       |
| heat2d_identity.c       | return the input                    | checker vs fresh reference       |
| saxpy_partial.c         | skip half the work                  | checker vs fresh reference       |
| heat2d_skip_steps.c     | skip work on alternate calls        | checker vs fresh reference       |
| saxpy_memo.c            | replay results for a repeated input | input variants + last/repeat run |
| saxpy_mutate_input.c    | scribble on a read-only input       | input-mutation check             |
| saxpy_oob_write.c       | write past the end of a buffer      | guard zones                      |
| saxpy_nan.c             | NaN in the output                   | explicit non-finite check        |
| saxpy_forbidden.c       | clocks, processes                   | static checker                   |
| saxpy_missing_entry.c   | wrong entry point name              | static checker                   |
| saxpy_hang.c            | never returns                       | per-size timeout (kill)          |
| saxpy_crash.c           | segfault on one size                | crash attributed to its size     |
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from synthloop.tasks.kernels import get_task
from synthloop.tasks.kernels.evaluate import EvalConfig, evaluate_kernel
from synthloop.tasks.kernels.spec import Size

SAXPY = [Size("N=4096", {"N": 4096}), Size("N=10007", {"N": 10007})]
HEAT = [Size("64^2x6", {"NX": 64, "NY": 64, "NZ": 1, "steps": 6})]


def _eval(task: str, src: str, cfg: EvalConfig, sizes: list[Size]) -> dict:
    return evaluate_kernel(task, src, cfg, sizes=sizes)


@pytest.mark.parametrize("kernel,task,kind,needle", [
    ("saxpy_zeros.c", "saxpy", "wrong", "max_abs"),
    ("heat2d_identity.c", "heat2d", "wrong", "max_abs"),
    ("saxpy_partial.c", "saxpy", "wrong", "max_abs"),
    ("heat2d_skip_steps.c", "heat2d", "wrong", "max_abs"),
    ("saxpy_mutate_input.c", "saxpy", "input_mutated", "'x' changed"),
    ("saxpy_oob_write.c", "saxpy", "out_of_bounds_write", "guard zone overwritten around y"),
    ("saxpy_nan.c", "saxpy", "wrong", "nonfinite"),
])
def test_dynamic_check_fires(kernel: str, task: str, kind: str, needle: str, fast_cfg: EvalConfig,
                            redteam: Callable[[str], str]) -> None:
    sizes = SAXPY if task == "saxpy" else HEAT
    res = _eval(task, redteam(kernel), fast_cfg, sizes)
    assert res["compile_ok"] and not res["correct"] and res["score"] == 0.0
    for row in res["sizes"]:
        assert not row["correct"], row["label"]
        assert row["error_kind"] == kind, row
        assert needle in row["error"], row["error"]
    assert res["fail_reason"].startswith(sizes[0].label), "per-size diagnosis"


def test_memoising_kernel_caught_by_input_variants(fast_cfg: EvalConfig, redteam: Callable[[str], str]) -> None:
    res = _eval("saxpy", redteam("saxpy_memo.c"), fast_cfg, SAXPY)
    assert not res["correct"]
    row = res["sizes"][0]
    assert row["error_kind"] == "wrong"
    assert "last run (input variant 1)" in row["error"], "the replayed result meets a new input"
    assert any("mutable static state" in w for w in res["warnings"])


@pytest.mark.parametrize("kernel,needle", [("saxpy_forbidden.c", "reading clocks"),
                                           ("saxpy_missing_entry.c", "entry point 'saxpy' is not defined")])
def test_static_checker_rejects_before_building(kernel: str, needle: str, fast_cfg: EvalConfig,
                                               redteam: Callable[[str], str]) -> None:
    res = _eval("saxpy", redteam(kernel), fast_cfg, SAXPY)
    assert res["error_kind"] == "static_check" and not res["compile_ok"]
    assert needle in res["fail_reason"]


def test_hanging_kernel_is_killed_within_its_timeout(redteam: Callable[[str], str]) -> None:
    cfg = EvalConfig(backend="cpu", warmup=0, measure=1, variants=1, timeout_s=3.0, threads=1)
    t0 = time.monotonic()
    res = _eval("saxpy", redteam("saxpy_hang.c"), cfg, SAXPY)
    elapsed = time.monotonic() - t0
    assert [r["error_kind"] for r in res["sizes"]] == ["timeout", "timeout"]
    assert "killed after 3.0 s" in res["sizes"][0]["error"]
    assert elapsed < 2 * 3.0 + 8.0, f"two sizes, each killed at 3 s (took {elapsed:.1f} s)"


def test_crash_is_attributed_to_its_size_and_the_caller_survives(fast_cfg: EvalConfig,
                                                                redteam: Callable[[str], str]) -> None:
    res = _eval("saxpy", redteam("saxpy_crash.c"), fast_cfg, SAXPY)
    small, large = res["sizes"]
    assert small["correct"], small
    assert large["error_kind"] == "crash" and "SIGSEGV" in large["error"]
    assert not res["correct"] and res["score"] == 0.0


def test_compile_error_is_trimmed_and_reported(fast_cfg: EvalConfig) -> None:
    src = get_task("saxpy").seed_source("cpu").replace("y[i] = a * x[i] + y[i];", "y[i] = a * x[i] + undefined_v;")
    res = _eval("saxpy", src, fast_cfg, SAXPY)
    assert res["error_kind"] == "compile"
    assert "undefined_v" in res["fail_reason"] and "error" in res["fail_reason"]
    assert "/tmp" not in res["fail_reason"]
