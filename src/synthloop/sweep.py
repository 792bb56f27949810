"""Sweeps: many ordinary runs from YAML configs, a grid of overrides and repeats, with one index file.

A config may hold a ``grid:`` mapping of dotted keys to lists; the sweep runs
the product of those values (``task: [safety/boat_race, safety/whisky_gold]``,
``task_options.false_positive_rate: [0, 0.2, 0.5]``). Repeat ``i`` sets
``llm.seed`` (and the task's ``seed`` option, where it has one) to base + i so
repeats differ while cells share seeds for paired comparisons. Every cell is a
normal run directory; running the same sweep again resumes unfinished cells and
skips completed ones.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synthloop.config import ConfigError, apply_override, build_config, load_yaml

INDEX = "sweep.json"


def _slug(v: Any) -> str:
    s = str(v).replace("/", "-").replace(" ", "")
    return s[:40]


def expand(config_path: Path, sets: list[str], grid_extra: dict[str, list[Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(cell name, config dict) for every grid point of one config file."""
    data = load_yaml(config_path)
    grid = dict(data.pop("grid", {}) or {})
    grid.update(grid_extra)
    for s in sets:
        apply_override(data, s)
    keys = sorted(grid)
    for k in keys:
        if not isinstance(grid[k], list) or not grid[k]:
            raise ConfigError(f"grid key {k!r} in {str(config_path)!r} must map to a non-empty list")
    cells = []
    for values in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
        d = copy.deepcopy(data)
        for k, v in zip(keys, values):
            apply_override(d, f"{k}={json.dumps(v)}")
        tag = "__".join(f"{k.split('.')[-1]}={_slug(v)}" for k, v in zip(keys, values))
        cells.append((config_path.stem + (f"__{tag}" if tag else ""), d))
    return cells


def run_sweep(configs: list[Path], out_root: Path, repeats: int = 1, sets: list[str] | None = None,
              grid: dict[str, list[Any]] | None = None, announce: Callable[[str], None] = print) -> Path:
    from synthloop.runner import execute_run, prepare_run
    from synthloop.tasks.registry import task_class

    out_root.mkdir(parents=True, exist_ok=True)
    plan = []
    for cfg_path in configs:
        for name, data in expand(cfg_path, sets or [], grid or {}):
            build_config(data)  # validate every cell before running any
            plan.append((name, data))
    index: dict[str, Any] = {"configs": [str(c) for c in configs], "repeats": repeats, "cells": [],
                             "started_at": time.time()}
    for name, data in plan:
        for rep in range(repeats):
            d = copy.deepcopy(data)
            base = d.setdefault("llm", {}).get("seed") or 0
            d["llm"]["seed"] = int(base) + rep
            if "seed" in task_class(d["task"]).Options.model_fields:
                opts = d.setdefault("task_options", {})
                opts["seed"] = int(opts.get("seed", 0)) + rep
            run_dir = out_root / f"{name}__r{rep}"
            d["out"] = str(run_dir)
            cell = {"name": name, "repeat": rep, "run_dir": str(run_dir), "task": d["task"]}
            status = _status(run_dir)
            if status == "completed":
                announce(f"[{name} r{rep}] already completed")
            else:
                if status is None:
                    prepare_run(build_config(d), announce=announce)
                announce(f"[{name} r{rep}] running")
                s = execute_run(run_dir)
                cell["best"] = (s.get("best") or {}).get("selection_score")
            cell["status"] = _status(run_dir)
            index["cells"].append(cell)
            (out_root / INDEX).write_text(json.dumps(index, indent=1))
    index["finished_at"] = time.time()
    (out_root / INDEX).write_text(json.dumps(index, indent=1))
    return out_root / INDEX


def _status(run_dir: Path) -> str | None:
    db = run_dir / "run.sqlite"
    if not db.is_file():
        return None
    from synthloop.store.db import RunDB

    con = RunDB(db, readonly=True)
    try:
        return con.get_meta("status")
    finally:
        con.close()
