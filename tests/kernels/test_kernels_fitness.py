"""Roofline fitness: per-size attainable ceilings, capping, implausibility flags, gmean, ceiling cache."""

from __future__ import annotations

import json

import pytest

from synthloop.tasks.kernels import get_task
from synthloop.tasks.kernels.ceilings import Ceilings, get_ceilings
from synthloop.tasks.kernels.fitness import attainable_time, gmean_score, regressions, size_fitness
from synthloop.tasks.kernels.spec import Size

C = Ceilings(backend="cpu", machine="test", levels=[(1 << 15, 400e9), (1 << 20, 200e9), (1 << 26, 20e9)],
             peak_flops=100e9, threads=2)


def test_level_is_the_largest_footprint_not_above_the_working_set() -> None:
    assert C.bandwidth_for(1 << 10) == (400e9, 1 << 15)
    assert C.bandwidth_for(3 << 20) == (200e9, 1 << 20)
    assert C.bandwidth_for(1 << 30) == (20e9, 1 << 26)
    noisy = Ceilings(backend="cuda", machine="t", levels=[(1 << 20, 500e9), (1 << 24, 2500e9), (1 << 28, 2900e9)],
                     peak_flops=1e13)
    assert noisy.bandwidth_for(1 << 25)[0] == 2900e9, "a larger footprint measured faster bounds this level too"


def test_attainable_uses_min_of_compute_and_bandwidth() -> None:
    saxpy, nbody = get_task("saxpy"), get_task("nbody")
    p = Size("t", {"N": 1 << 22})  # 32 MiB working set -> 200 GB/s level
    t, bound, level = attainable_time(saxpy, p, C)
    assert bound == "bandwidth" and level == 1 << 20 and t == pytest.approx(12 * (1 << 22) / 200e9)
    q = Size("t", {"N": 4096, "steps": 1})
    t, bound, _ = attainable_time(nbody, q, C)
    assert bound == "compute" and t == pytest.approx(20 * 4096 ** 2 / 100e9)


def test_fraction_capped_at_one_and_implausible_flagged() -> None:
    saxpy = get_task("saxpy")
    p = Size("t", {"N": 1 << 22})
    t_min, _, _ = attainable_time(saxpy, p, C)
    honest = size_fitness(saxpy, p, [2 * t_min, 2.2 * t_min, 1.9 * t_min], C)
    assert honest.fraction == pytest.approx(0.5) and not honest.implausible
    assert honest.achieved == pytest.approx(saxpy.bytes_moved(p) / (2 * t_min) / 1e9)
    fast = size_fitness(saxpy, p, [0.5 * t_min] * 3, C)
    assert fast.fraction == 1.0 and fast.raw_fraction == pytest.approx(2.0) and fast.implausible


def test_gmean_zero_on_any_failure_and_regressions() -> None:
    assert gmean_score([0.25, 1.0]) == pytest.approx(0.5)
    assert gmean_score([0.5, None]) == 0.0 and gmean_score([]) == 0.0
    assert regressions({"a": 0.5, "b": 0.9}, {"a": 0.5, "b": 1.0}) == ["b"]
    assert regressions({"a": 0.48}, {"a": 0.5}) == []


def test_ceilings_cached_per_machine(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYNTHLOOP_CACHE", str(tmp_path))
    calls = []

    def fake(threads: int) -> Ceilings:
        calls.append(threads)
        return Ceilings(backend="cpu", machine="", levels=[(1 << 15, 1e11)], peak_flops=1e11, threads=threads)

    monkeypatch.setattr("synthloop.tasks.kernels.ceilings.measure_cpu", fake)
    a = get_ceilings("cpu", threads=1)
    b = get_ceilings("cpu", threads=1)
    assert calls == [1] and a == b and a.machine
    files = list((tmp_path / "ceilings").glob("cpu-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["levels"] == [[1 << 15, 1e11]]
    get_ceilings("cpu", threads=1, refresh=True)
    assert calls == [1, 1]
