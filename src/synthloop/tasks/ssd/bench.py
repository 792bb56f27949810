"""Benchmark (``synthloop bench ssd``): engine and evaluation throughput.

Measures, with observations off and 10 agents: env steps/s with all-STAND
actions and with all-BFS agents (the compiled fast path, and the generic
per-agent ``policy(state, i)`` path that user policies take), for
Gathering-large and Cleanup; and the wall time of a 5-seed self-play BFS
evaluation of Gathering-large through :func:`evaluate_policy`, warm (this
process) and cold (a fresh interpreter, including imports and the worker
pool). Ratios are against the figures of the reference engine (the code of
arXiv 2603.19453, "Cooperation and Exploitation in LLM Policy Synthesis for
Sequential Social Dilemmas"), measured on a 2-vCPU machine.

The figures are one JSON object on stdout; what is being measured is named on
stderr as it starts, so a long benchmark shows its progress.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from synthloop.cli_argparse import OneLineParser
from synthloop.tasks.ssd.actions import STAND
from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.engine import SSDEngine
from synthloop.tasks.ssd.evaluate import evaluate_policy
from synthloop.tasks.ssd.policies import bfs_policy
from synthloop.tasks.ssd.runner import run_episode

#: Reference engine, steps/s (obs on / obs off) and the 5-seed BFS eval time.
REFERENCE = {
    "gathering_stand": {"obs_on": 359.0, "obs_off": 1080.0},
    "cleanup_stand": {"obs_on": 617.0, "obs_off": 9000.0},
    "gathering_bfs": {"obs_on": 360.0, "obs_off": 1080.0},
    "cleanup_bfs": {"obs_on": 1250.0},
    "eval_5seed_bfs_s": 28.0,
}
TARGETS = {"stand_steps_per_s": 50_000, "bfs_speedup": 20.0, "eval_5seed_bfs_s": 1.5}


def _stand_rate(game: str, steps: int) -> float:
    env = SSDEngine(GameConfig.for_game(game, max_steps=steps))
    actions = np.full(env.n_agents, STAND, dtype=np.int64)
    env.step_arrays(actions)  # compile / warm
    env.reset(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step_arrays(actions)
    return steps / (time.perf_counter() - t0)


def _policy_rate(game: str, policy: Any, steps: int) -> float:
    cfg = GameConfig.for_game(game, max_steps=steps)
    run_episode(GameConfig.for_game(game, max_steps=5), [policy] * 10, 0)  # warm
    t0 = time.perf_counter()
    run_episode(cfg, [policy] * 10, 0)
    return steps / (time.perf_counter() - t0)


def _generic_bfs(state: Any, agent_id: int) -> int:
    """bfs_policy behind a different identity: forces the per-agent path."""
    return bfs_policy(state, agent_id)


def _cold_eval_seconds() -> float:
    code = (
        "import time; t=time.perf_counter();"
        "from synthloop.tasks.ssd import evaluate_policy;"
        "evaluate_policy('gathering','builtin:bfs',seeds=[0,1,2,3,4]);"
        "print(time.perf_counter()-t)"
    )
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    total = time.perf_counter() - t0
    return float(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else total


def run_benchmark(steps: int = 5000, cold: bool = True,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run all measurements and return a JSON-ready dict; ``progress`` hears each one's name as it starts."""
    say = progress or (lambda line: None)
    res: dict[str, Any] = {"steps_per_measurement": steps, "agents": 10, "observations": False}
    plan: dict[str, Callable[[], float]] = {
        "gathering_stand": lambda: _stand_rate("gathering", steps),
        "cleanup_stand": lambda: _stand_rate("cleanup", steps),
        "gathering_bfs": lambda: _policy_rate("gathering", bfs_policy, 1000),
        "cleanup_bfs": lambda: _policy_rate("cleanup", bfs_policy, 1000),
        "gathering_bfs_generic_api": lambda: _policy_rate("gathering", _generic_bfs, 1000),
        "cleanup_bfs_generic_api": lambda: _policy_rate("cleanup", _generic_bfs, 1000),
    }
    total = len(plan) + 1 + int(cold)
    rates: dict[str, float] = {}
    for i, (key, measure) in enumerate(plan.items(), 1):
        say(f"[{i}/{total}] steps/s: {key}")
        rates[key] = measure()
    res["env_steps_per_s"] = {k: round(v, 1) for k, v in rates.items()}
    ratios: dict[str, float] = {}
    for key, rate in rates.items():
        base = REFERENCE.get(key.replace("_generic_api", ""))
        if isinstance(base, dict):
            for mode, ref in base.items():
                ratios[f"{key}_vs_ref_{mode}"] = round(rate / ref, 1)
    res["speedup_vs_reference"] = ratios
    say(f"[{len(plan) + 1}/{total}] 5-seed BFS evaluation of Gathering-large, warm")
    evaluate_policy("gathering", "builtin:bfs", seeds=[0], steps=10, workers=1)  # warm
    t0 = time.perf_counter()
    evaluate_policy("gathering", "builtin:bfs", seeds=[0, 1, 2, 3, 4])
    warm = time.perf_counter() - t0
    res["eval_5seed_bfs_gathering_large_s"] = {"warm": round(warm, 3)}
    if cold:
        say(f"[{total}/{total}] the same in a fresh interpreter (cold)")
        res["eval_5seed_bfs_gathering_large_s"]["cold_fresh_interpreter"] = round(_cold_eval_seconds(), 3)
    res["reference"] = REFERENCE
    res["targets"] = TARGETS
    res["targets_met"] = {
        "stand_gathering": rates["gathering_stand"] >= TARGETS["stand_steps_per_s"],
        "stand_cleanup": rates["cleanup_stand"] >= TARGETS["stand_steps_per_s"],
        "bfs_gathering_20x": rates["gathering_bfs"] >= 20 * REFERENCE["gathering_bfs"]["obs_on"],
        "bfs_cleanup_20x": rates["cleanup_bfs"] >= 20 * REFERENCE["cleanup_bfs"]["obs_on"],
        "eval_5seed_under_1_5s": warm < TARGETS["eval_5seed_bfs_s"],
    }
    return res


def main(argv: list[str] | None = None) -> int:
    """``synthloop bench ssd``: the figures as one JSON object on stdout, progress on stderr."""
    ap = OneLineParser(prog="synthloop bench ssd", description="Simulator and evaluation throughput of the social"
                       " dilemmas (steps/s, 5-seed evaluation time): JSON on stdout, progress on stderr.")
    ap.add_argument("--steps", type=int, default=5000, help="steps per STAND measurement (default 5000)")
    ap.add_argument("--no-cold", dest="cold", action="store_false",
                    help="skip the fresh-interpreter evaluation (the slowest part)")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    a = ap.parse_args(argv)
    say = None if a.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(run_benchmark(steps=a.steps, cold=a.cold, progress=say), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
