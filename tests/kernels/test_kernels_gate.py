"""End-of-run held-out gate: a kernel specialised to the in-distribution sizes is caught."""

from __future__ import annotations

from synthloop.tasks.kernels import get_task
from synthloop.tasks.kernels.evaluate import EvalConfig
from synthloop.tasks.kernels.gate import heldout_gate

CFG = EvalConfig(backend="cpu", warmup=1, measure=2, threads=1)


def test_size_specialised_kernel_fails_the_held_out_gate() -> None:
    """Like the Opus hmc case: correct on every in-distribution N (powers of two), wrong on an odd N."""
    seed = get_task("saxpy").seed_source("cpu")
    specialised = seed.replace("for (uint32_t i = 0; i < N; ++i)", "for (uint32_t i = 0; i < (N & ~15u); ++i)")
    report = heldout_gate("saxpy", seed, specialised, CFG, pairs=4)
    assert report["failed"] == ["N=1000003"]
    assert report["sizes"][0]["verdict"] == "FAIL" and report["sizes"][0]["seed_correct"]


def test_seed_against_itself_is_no_change_or_noise() -> None:
    seed = get_task("saxpy").seed_source("cpu")
    report = heldout_gate("saxpy", seed, seed + "\n", CFG, pairs=8)
    row = report["sizes"][0]
    assert row["best_correct"] and row["ci_low"] <= row["speedup"] <= row["ci_high"]
    assert report["failed"] == []
