"""Sweeps: environments × methods × false-positive rates (× repeats), each one ordinary synthloop run.

Every cell is a full run directory made by :func:`synthloop.runner.prepare_run`
and driven by :func:`synthloop.runner.execute_run`, so each is recorded,
budgeted, resumable and reportable on its own; the sweep only adds an index
(``sweep.json``) and, through :mod:`.report`, the noise heat map. Running a
sweep again over the same ``out_root`` resumes: finished cells are replayed
from their databases (no new calls), unfinished ones continue.

Repeat ``i`` uses run seed ``base_seed + i``, so repeats differ in their
episode seeds and noise draws while rates and methods share them (paired
comparisons, as in the reference's noise study).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from synthloop.config import ConfigError, build_config
from synthloop.runner import execute_run, prepare_run
from synthloop.tasks.safety.envs import env_ids
from synthloop.tasks.safety.methods import METHODS

INDEX = "sweep.json"


def cell_name(env: str, method: str, rate: float, repeat: int) -> str:
    return f"{env}__{method}__fp{rate:g}__r{repeat}"


def sweep(envs: Sequence[str], methods: Sequence[str], rates: Sequence[float], base_options: dict[str, Any],
          model: str, out_root: Path, repeats: int = 1, *, run_config: dict[str, Any] | None = None,
          announce: Callable[[str], None] = print) -> Path:
    """Run the grid sequentially in-process; write and return ``out_root/sweep.json``.

    ``base_options`` are task options shared by every cell (rounds, episodes,
    faithful, seed, …); ``run_config`` holds other RunConfig sections (llm
    base_url, budget, gate), applied to every cell.
    """
    unknown = [e for e in envs if e not in env_ids()] + [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown environment or method {', '.join(unknown)}; environments: "
                          f"{', '.join(env_ids())}; methods: {', '.join(METHODS)}")
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    base_seed = int(base_options.get("seed", 42))
    cells: list[dict[str, Any]] = []
    index = {"envs": list(envs), "methods": list(methods), "rates": [float(r) for r in rates], "repeats": repeats,
             "model": model, "base_options": base_options, "run_config": run_config or {}, "cells": cells,
             "started_at": time.time()}
    for env in envs:
        for method in methods:
            for rate in rates:
                for rep in range(repeats):
                    name = cell_name(env, method, float(rate), rep)
                    run_dir = out_root / name
                    options = {**base_options, "method": method, "false_positive_rate": float(rate),
                               "seed": base_seed + rep}
                    data = {**(run_config or {}), "task": f"safety/{env}", "task_options": options,
                            "out": str(run_dir)}
                    data["llm"] = {**data.get("llm", {}), "model": model}
                    if not (run_dir / "run.sqlite").exists():
                        prepare_run(build_config(data), announce=lambda s: None)
                    announce(f"[sweep] {name}")
                    summary = execute_run(run_dir)
                    cells.append({"name": name, "env": env, "method": method, "rate": float(rate), "repeat": rep,
                                  "seed": base_seed + rep, "run_dir": str(run_dir), "status": summary.get("status")})
                    (out_root / INDEX).write_text(json.dumps(index, indent=1))
    index["finished_at"] = time.time()
    (out_root / INDEX).write_text(json.dumps(index, indent=1))
    return out_root / INDEX


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def sweep_main(argv: list[str] | None = None) -> int:
    """``sweep --envs a,b --methods m1,m2 --rates 0,0.1 --model M --out DIR [--rounds N] [--episodes K] …``."""
    p = argparse.ArgumentParser(prog="synthloop sweep", description="environments × methods × noise rates")
    p.add_argument("--envs", type=_names, default=list(env_ids()[:5]), help="comma-separated (default: gridworlds)")
    p.add_argument("--methods", type=_names, default=["epo_safe"])
    p.add_argument("--rates", type=_floats, default=[0.0, 0.05, 0.1, 0.2, 0.5])
    p.add_argument("--model", required=True)
    p.add_argument("--base-url", default=None)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--heldout-episodes", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--faithful", action="store_true")
    p.add_argument("--max-cost-usd", type=float, default=None, help="budget per run")
    p.add_argument("--report", action="store_true", help="write the sweep report (heat maps) when done")
    args = p.parse_args(argv)
    options = {"rounds": args.rounds, "episodes": args.episodes, "heldout_episodes": args.heldout_episodes,
               "seed": args.seed, "faithful": args.faithful}
    run_config: dict[str, Any] = {}
    if args.base_url:
        run_config["llm"] = {"base_url": args.base_url}
    if args.max_cost_usd:
        run_config["budget"] = {"max_cost_usd": args.max_cost_usd}
    try:
        path = sweep(args.envs, args.methods, args.rates, options, args.model, args.out, args.repeats,
                     run_config=run_config)
    except ConfigError as e:
        print(f"error: {e}")
        return 2
    print(path)
    if args.report:
        from synthloop.tasks.safety.report import report

        for f in report(args.out, args.out / "report"):
            print(f)
    return 0


if __name__ == "__main__":
    raise SystemExit(sweep_main())
