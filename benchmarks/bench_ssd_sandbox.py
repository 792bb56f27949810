"""Sandbox overhead of SSD policy evaluation: one paper-size evaluation (5 seeds, N=10, T=1000, Gathering large)
of a BFS-cost policy, (a) through the default path (sandboxed case workers, policy in a forked child fed
read-only snapshots, each case judged (replayed) as soon as it arrives, as Engine.evaluate does) vs (b) the same policy run in-process by the engine's evaluate_policy
(fork pool, one worker per seed). Prints JSON with the ratio (target <= 1.5).

The two sides alternate within each repeat so that load from other processes hits both alike; ``ratio`` is
the ratio of the medians, ``ratio_each`` the per-repeat ratios. ``sandbox_run_s`` / ``judge_s`` are, for
the record, the episodes alone and the trusted judge's replays of them one after another (in the measured
path the replays overlap the episodes still running). ``handoff`` is the per-step
cost of the engine <-> policy-child round trip, measured in this process on one episode with a policy
that returns at once: ``sandbox_us`` (pack the engine's arrays, pipe to the child, rebuild the read-only
state there, N trivial calls under the budget watchdog, answer back) vs ``in_process_us`` (snapshot + N calls),
and ``pipe_round_trip_us``, the floor: a bare 1 KB request / 11 B answer between two Python processes on one CPU.

    python benchmarks/bench_ssd_sandbox.py [--game gathering] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

from synthloop.core.types import Artifact
from synthloop.execution.local import LocalExecutor
from synthloop.loop.engine import run_and_judge
from synthloop.tasks.registry import make_task
from synthloop.tasks.ssd import helpers as H
from synthloop.tasks.ssd.actions import STAND, direction_to_action
from synthloop.tasks.ssd.episodes import run_safe_episode
from synthloop.tasks.ssd.evaluate import evaluate_policy
from synthloop.tasks.ssd.prompts import WORKED_EXAMPLE

CODE = WORKED_EXAMPLE  # the greedy BFS policy the system prompt shows, as untrusted source
TRIVIAL = "def policy(state, agent_id):\n    return 0\n"


def bfs_cost_policy(state, agent_id):  # noqa: ANN001 - same code as CODE, as a trusted in-process callable
    if state.agent_timeout[agent_id] > 0:
        return STAND
    step = H.bfs_nearest_apple(state, agent_id)
    if step is None:
        return STAND
    return direction_to_action(step[0], step[1], int(state.agent_orient[agent_id]))


def trivial_policy(state, agent_id):  # noqa: ANN001, ARG001
    return 0


def handoff_us(config, repeats: int) -> dict[str, float]:  # noqa: ANN001
    """Median per-step policy-phase time of one episode with a do-nothing policy: sandboxed vs in-process."""
    steps = config.max_steps
    sand = [run_safe_episode(config, "reference", TRIVIAL, 0)["policy_wall_s"] for _ in range(repeats)]
    inproc = [run_safe_episode(config, "reference", trivial_policy, 0)["policy_wall_s"] for _ in range(repeats)]
    return {"sandbox_us": round(statistics.median(sand) / steps * 1e6, 1),
            "in_process_us": round(statistics.median(inproc) / steps * 1e6, 1)}


def pipe_round_trip_us(n: int = 5000) -> float:
    """The floor of the hand-off: one pipe round trip between two processes pinned to one CPU."""
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(old)})
    pid = os.fork()
    if pid == 0:  # pragma: no cover - echo child
        os.close(a_w)
        while os.read(a_r, 1 << 16):
            os.write(b_w, b"A" * 11)
        os._exit(0)
    try:
        msg = bytes(1024)
        t0 = time.perf_counter()
        for _ in range(n):
            os.write(a_w, msg)
            os.read(b_r, 1 << 16)
        return round((time.perf_counter() - t0) / n * 1e6, 1)
    finally:
        os.close(a_w)
        os.waitpid(pid, 0)
        for fd in (a_r, b_r, b_w):
            os.close(fd)
        os.sched_setaffinity(0, old)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--game", default="gathering")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    seeds = [0, 1, 2, 3, 4]
    task = make_task(f"ssd/{a.game}", {"feedback_seeds": seeds})
    ex = LocalExecutor(task, workers=len(seeds))
    ex.start()
    art, cases = Artifact(CODE), task.pools().feedback
    sandbox, inproc, runs, judges = [], [], [], []

    async def one() -> float:
        """The engine's own path: sandboxed cases, each judged (replayed) as soon as its outcome arrives."""
        t0 = time.perf_counter()
        results = await run_and_judge(ex, task, art, cases, task.limits)
        assert all(r.ok for r in results), [r.diagnostics for r in results]
        return time.perf_counter() - t0

    async def split() -> tuple[float, float]:
        """For the record: the episodes alone, then the judge's replays of them one after another."""
        t0 = time.perf_counter()
        outs = await ex.run(art, cases, task.limits)
        t1 = time.perf_counter()
        for c, o in zip(cases, outs):
            task.judge(art, c, o.output)
        return t1 - t0, time.perf_counter() - t1

    try:
        asyncio.run(one())  # warm
        for _ in range(a.repeats):
            sandbox.append(asyncio.run(one()))
            t0 = time.perf_counter()
            res = evaluate_policy(a.game, bfs_cost_policy, seeds=seeds, workers=len(seeds))
            inproc.append(time.perf_counter() - t0)
            assert res["mean"]["errors"] == 0
            run, judge = asyncio.run(split())
            runs.append(run)
            judges.append(judge)
    finally:
        ex.close()
    s, i = statistics.median(sandbox), statistics.median(inproc)
    print(json.dumps({"game": a.game, "seeds": len(seeds), "agents": 10, "steps": 1000, "cpus": os.cpu_count(),
                      "sandboxed_s": round(s, 3), "in_process_s": round(i, 3), "ratio": round(s / i, 3),
                      "target_ratio": 1.5, "ratio_each": [round(x / y, 3) for x, y in zip(sandbox, inproc)],
                      "sandboxed_all_s": [round(x, 3) for x in sandbox],
                      "in_process_all_s": [round(x, 3) for x in inproc],
                      "sandbox_run_s": round(statistics.median(runs), 3), "judge_s": round(statistics.median(judges), 3),
                      "handoff": {**handoff_us(task.config, 3), "pipe_round_trip_us": pipe_round_trip_us()}}))


if __name__ == "__main__":
    main()
