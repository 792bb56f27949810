"""Micro-benchmark of the sandbox: cost of one trivial case, engine → result, printed as JSON.

    python benchmarks/sandbox_spawn.py [--jobs 200] [--workers 4]

Figures (milliseconds):

* ``latency_idle_ms``: one job at a time with a pause between jobs, so a prepared
  candidate is always waiting: the critical-path overhead the engine sees.
* ``seq_ms_per_job`` / ``conc4_ms_per_job``: back-to-back jobs, one at a time and
  4 in flight: throughput, bounded by the CPU cost of making fresh processes.
* ``cpu_ms_per_job``: CPU (all sandbox processes) per trivial job, over the whole run.
* ``sandbox_cpu_ms_per_job`` / ``engine_cpu_ms_per_job``: per phase (``seq``, ``conc4``): CPU of the
  zygote, supervisors and candidates (read live from /proc, candidates through their
  supervisors' reaped-children times, so at clock-tick resolution), and of the engine process.
* ``cold_ms`` / ``cold_network_ms``: one job with no prepared candidate
  (``run_case_sandboxed``, as on a Ray worker), with and without a new network
  namespace, i.e. what ``unshare(CLONE_NEWNET)`` adds.
* ``fork_exit_ms``: a bare ``fork`` + ``_exit`` + ``wait`` of this process, the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

from synthloop.core.task import Task
from synthloop.core.types import Artifact, Case, CasePools, CaseResult
from synthloop.execution import sandbox as sb
from synthloop.execution.base import Limits
from synthloop.execution.local import LocalExecutor


class Trivial(Task):
    name = "bench/trivial"

    def brief(self) -> str:
        return ""

    def pools(self) -> CasePools:
        return CasePools()

    def run(self, artifact: Artifact, case: Case) -> Any:
        return 1

    def judge(self, artifact: Artifact, case: Case, output: Any) -> CaseResult:
        return CaseResult(case.id, True, 1.0)


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def _ms(x: float) -> float:
    return round(x * 1e3, 3)


def _tree_cpu(zygote: int) -> float:
    """CPU seconds of the zygote and its supervisors, plus what their reaped children used."""
    tck, total = os.sysconf("SC_CLK_TCK"), 0.0
    pids = [zygote]
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    if int(f.read().rsplit(b")", 1)[1].split()[1]) == zygote:
                        pids.append(int(name))
            except (OSError, ValueError):
                pass
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat", "rb") as f:
                total += int(f.read().split()[0]) / 1e9
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if pid != zygote:  # the zygote's reaped children are supervisors: counted live above
                total += (int(fields[13]) + int(fields[14])) / tck
        except (OSError, ValueError, IndexError):
            pass
    return total


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


async def _local(ex: LocalExecutor, n: int) -> dict[str, Any]:
    art, lim = Artifact("trivial"), Limits(wall_s=10)
    for _ in range(10):
        await ex.run(art, [Case("w", "feedback")], lim)
    lat, walls = [], []
    for i in range(n // 2):
        await asyncio.sleep(0.02)
        t0 = time.perf_counter()
        [o] = await ex.run(art, [Case(str(i), "feedback")], lim)
        lat.append(time.perf_counter() - t0)
        walls.append(o.wall_s)
        assert o.ok, o
    cpu: dict[str, dict[str, float]] = {"sandbox_cpu_ms_per_job": {}, "engine_cpu_ms_per_job": {}}
    t0, s0, e0 = time.perf_counter(), _tree_cpu(ex.zygote_pid), _self_cpu()
    for i in range(n):
        await ex.run(art, [Case(str(i), "feedback")], lim)
    seq = (time.perf_counter() - t0) / n
    cpu["sandbox_cpu_ms_per_job"]["seq"] = _ms((_tree_cpu(ex.zygote_pid) - s0) / n)
    cpu["engine_cpu_ms_per_job"]["seq"] = _ms((_self_cpu() - e0) / n)
    sem = asyncio.Semaphore(4)

    async def one(i: int) -> None:
        async with sem:
            await ex.run(art, [Case(str(i), "feedback")], lim)

    t0, s0, e0 = time.perf_counter(), _tree_cpu(ex.zygote_pid), _self_cpu()
    await asyncio.gather(*(one(i) for i in range(n)))
    conc = (time.perf_counter() - t0) / n
    cpu["sandbox_cpu_ms_per_job"]["conc4"] = _ms((_tree_cpu(ex.zygote_pid) - s0) / n)
    cpu["engine_cpu_ms_per_job"]["conc4"] = _ms((_self_cpu() - e0) / n)
    lat.sort()
    return {"latency_idle_ms": {"median": _ms(statistics.median(lat)), "p10": _ms(lat[len(lat) // 10]),
                                "p90": _ms(lat[len(lat) * 9 // 10])},
            "candidate_wall_median_ms": _ms(statistics.median(walls)),
            "seq_ms_per_job": _ms(seq), "conc4_ms_per_job": _ms(conc), **cpu}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    task = Trivial()
    plan = sb.probe()
    ex = LocalExecutor(task, workers=args.workers)
    ex.start()
    c0 = _children_cpu()
    try:
        res = asyncio.run(_local(ex, args.jobs))
    finally:
        ex.close()
    total_jobs = 10 + args.jobs // 2 + 2 * args.jobs
    res["cpu_ms_per_job"] = _ms((_children_cpu() - c0) / total_jobs)
    art, case = Artifact("trivial"), Case("c", "feedback")
    for key, net in (("cold_ms", False), ("cold_network_ms", True)):
        ts = []
        for _ in range(30):
            t0 = time.perf_counter()
            o = sb.run_case_sandboxed(task, art, case, Limits(wall_s=10, network=net), plan)
            ts.append(time.perf_counter() - t0)
            assert o.ok, o
        res[key] = _ms(statistics.median(ts))
    ts = []
    for _ in range(30):
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        ts.append(time.perf_counter() - t0)
    res["fork_exit_ms"] = _ms(statistics.median(ts))
    res.update(isolation=plan.mode, workers=args.workers, jobs=args.jobs, cpus=os.cpu_count(),
               loadavg_1m=os.getloadavg()[0], python=sys.version.split()[0])
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
