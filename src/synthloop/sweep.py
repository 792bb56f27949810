"""Sweeps: many ordinary runs from YAML configs, a grid of overrides and repeats, with one index file.

A config may hold a ``grid:`` mapping of dotted keys to lists; the sweep runs
the product of those values (``task: [safety/boat_race, safety/whisky_gold]``,
``task_options.false_positive_rate: [0, 0.2, 0.5]``). Repeat ``i`` sets
``llm.seed`` (and the task's ``seed`` option, where it has one) to base + i so
repeats differ while cells share seeds for paired comparisons. Every cell is a
normal run directory; running the same sweep again resumes unfinished cells and
skips completed ones.

A sweep is quiet: the model line ("model: mutate, the offline baseline ...")
is said once per sweep, not once per cell, and each cell prints one line when
it finishes (cell, repeat, best score or why there is none, proposals or LLM
calls and cost, run directory), so a long sweep can be followed and a broken
cell seen without opening its run.
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
    from synthloop.report.summary import summarize
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
    said: set[str] = set()

    def once(line: str) -> None:  # the model line is the same for every cell: say it once per sweep
        if line not in said:
            said.add(line)
            announce(line)

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
                s = summarize(run_dir)
                announce(cell_line(name, rep, s, "already completed"))
            else:
                if status is None:
                    prepare_run(build_config(d), announce=once)
                s = execute_run(run_dir)
                announce(cell_line(name, rep, s))
            cell.update(cell_result(s))
            cell["status"] = _status(run_dir)
            index["cells"].append(cell)
            (out_root / INDEX).write_text(json.dumps(index, indent=1))
    index["finished_at"] = time.time()
    (out_root / INDEX).write_text(json.dumps(index, indent=1))
    return out_root / INDEX


def cell_result(summary: dict[str, Any]) -> dict[str, Any]:
    """What the index keeps of a finished cell (new keys beside the old ``best``, so old readers still work)."""
    from synthloop.report.labels import is_baseline, priced, synthesizer_label

    synth, tot = summary.get("synthesizer") or {}, summary.get("totals") or {}
    return {"best": (summary.get("best") or {}).get("selection_score"), "objective": summary.get("objective"),
            "synthesizer": synthesizer_label(synth), "baseline": is_baseline(synth),
            "proposals": tot.get("calls", 0), "cost_usd": tot.get("cost_usd", 0.0), "priced": priced(synth),
            "error": summary.get("error")}


def cell_line(name: str, repeat: int, summary: dict[str, Any], note: str | None = None) -> str:
    """One line for a finished cell: ``[cell rN] best 0.93 value · 4 proposals by baseline: mutate · completed ·
    DIR``; a failed cell gives its cause instead of a score."""
    from synthloop.report.labels import calls_text

    status = str(summary.get("status"))
    best = (summary.get("best") or {}).get("selection_score")
    if status == "failed":
        head = f"failed: {summary.get('error') or 'no cause recorded'}"
    elif best is None:
        head = "no valid candidate"
    else:
        head = f"best {best:.6g} {summary.get('objective') or 'score'}"
    calls = calls_text(summary.get("totals") or {}, summary.get("synthesizer") or {})
    return f"[{name} r{repeat}] {head} · {calls} · {note or status} · {summary.get('run_dir')}"


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
