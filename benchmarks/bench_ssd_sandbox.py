"""Sandbox overhead of SSD policy evaluation: one paper-size evaluation (5 seeds, N=10, T=1000, Gathering large)
of a BFS-cost policy, (a) through the default path (sandboxed case workers, policy in a forked child fed
read-only snapshots, judge replay) vs (b) the same policy run in-process by the engine's evaluate_policy
(fork pool, one worker per seed). Prints JSON with the ratio (target <= 1.5).

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
from synthloop.tasks.registry import make_task
from synthloop.tasks.ssd import helpers as H
from synthloop.tasks.ssd.actions import STAND, direction_to_action
from synthloop.tasks.ssd.evaluate import evaluate_policy

CODE = '''def policy(state, agent_id):
    if state.agent_timeout[agent_id] > 0:
        return STAND
    step = bfs_nearest_apple(state, agent_id)
    if step is None:
        return STAND
    return direction_to_action(step[0], step[1], int(state.agent_orient[agent_id]))
'''


def bfs_cost_policy(state, agent_id):  # noqa: ANN001 - same code as CODE, as a trusted in-process callable
    if state.agent_timeout[agent_id] > 0:
        return STAND
    step = H.bfs_nearest_apple(state, agent_id)
    if step is None:
        return STAND
    return direction_to_action(step[0], step[1], int(state.agent_orient[agent_id]))


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
    sandbox, inproc = [], []

    async def one() -> float:
        t0 = time.perf_counter()
        outs = await ex.run(art, cases, task.limits)
        results = [task.judge(art, c, o.output) for c, o in zip(cases, outs)]
        assert all(r.ok for r in results), [o.error for o in outs]
        return time.perf_counter() - t0

    try:
        asyncio.run(one())  # warm
        for _ in range(a.repeats):
            sandbox.append(asyncio.run(one()))
            t0 = time.perf_counter()
            res = evaluate_policy(a.game, bfs_cost_policy, seeds=seeds, workers=len(seeds))
            inproc.append(time.perf_counter() - t0)
            assert res["mean"]["errors"] == 0
    finally:
        ex.close()
    s, i = statistics.median(sandbox), statistics.median(inproc)
    print(json.dumps({"game": a.game, "seeds": len(seeds), "agents": 10, "steps": 1000, "cpus": os.cpu_count(),
                      "sandboxed_s": round(s, 3), "in_process_s": round(i, 3), "ratio": round(s / i, 3),
                      "target_ratio": 1.5, "sandboxed_all_s": [round(x, 3) for x in sandbox],
                      "in_process_all_s": [round(x, 3) for x in inproc]}))


if __name__ == "__main__":
    main()
