"""Start, resume and finish a run: wires config, task, synthesizer, executor, store and engine together."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from synthloop.config import ConfigError, RunConfig, build_config
from synthloop.execution import make_executor
from synthloop.llm.factory import make_synthesizer, resolve_model
from synthloop.loop.engine import Engine
from synthloop.loop.strategies import STRATEGIES
from synthloop.store.db import RunDB
from synthloop.tasks.registry import make_task

Progress = Callable[[dict[str, Any]], None]


def new_run_id(task: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{task.replace('/', '-')}-{secrets.token_hex(3)}"


def prepare_run(cfg: RunConfig, announce: Callable[[str], None] = print) -> Path:
    """Resolve the model, create the run directory with config.yaml and an empty database."""
    model, line = resolve_model(cfg.llm.model, os.environ)
    explicit = cfg.llm.model is not None
    cfg = cfg.model_copy(update={"llm": cfg.llm.model_copy(update={"model": model})})
    task = make_task(cfg.task, cfg.task_options)
    if model == "mutate" and task.seed() is None and not callable(getattr(task, "search", None)):
        flags = [f"--{n.replace('_', '-')}" for n, f in task.Options.model_fields.items()
                 if "seed" in n and f.annotation is bool]
        hint = f"give it one ({', '.join(flags)})" if flags else "it has none"
        raise ConfigError(f"mutate perturbs a parent program and cannot write one from scratch, and {cfg.task} starts "
                          f"from no seed artifact: {hint}, or choose an LLM with --model")
    if not explicit:
        announce(line)
    run_dir = Path(cfg.out) if cfg.out else Path("runs") / new_run_id(cfg.task)
    if (run_dir / "run.sqlite").exists():
        raise ConfigError(f"run directory {str(run_dir)!r} already holds a run; use `synthloop resume {run_dir}`")
    run_dir.mkdir(parents=True, exist_ok=True)
    data = cfg.model_dump(mode="json")
    data["out"] = str(run_dir)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"config": data, "config_hash": cfg.digest()}, sort_keys=False))
    db = RunDB(run_dir / "run.sqlite")
    db.set_meta("config_hash", cfg.digest())
    db.set_meta("created_at", time.time())
    db.event("created", model=model)
    db.close()
    return run_dir


def load_run_config(run_dir: Path) -> RunConfig:
    p = run_dir / "config.yaml"
    if not p.is_file() or not (run_dir / "run.sqlite").is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory (needs config.yaml and run.sqlite)")
    data = yaml.safe_load(p.read_text())
    return build_config(data["config"])


def execute_run(run_dir: Path, progress: Progress | None = None, iterations: int | None = None) -> dict[str, Any]:
    """Run (or continue) the search in ``run_dir``, then the held-out gate, then write the report."""
    from synthloop.report.summary import summarize, write_report

    cfg = load_run_config(run_dir)
    if iterations is not None:
        cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update={"iterations": iterations})})
    task = make_task(cfg.task, cfg.task_options)
    # The local executor forks its zygote here, so it must happen before anything secret or writable exists in
    # this process: no LLM client (API keys on the heap), no open run database, no threads, no event loop.
    executor = make_executor(cfg.execution.executor, task, cfg.task, cfg.task_options, cfg.execution.workers,
                             cfg.execution.ray_address)
    executor.start()
    try:
        synth = make_synthesizer(
            cfg.llm.model or "mutate", base_url=cfg.llm.base_url, max_attempts=cfg.llm.max_attempts,
            backoff_base_s=cfg.llm.backoff_base_s, pricing_path=cfg.llm.pricing,
        )
    except BaseException:
        executor.close()
        raise
    db = RunDB(run_dir / "run.sqlite")
    resumed = bool(db.candidates())
    db.event("resume" if resumed else "start", pid=os.getpid(), iterations=cfg.search.iterations)
    db.set_meta("status", "running")
    desc = synth.describe()
    db.set_meta("synthesizer", desc)
    if desc.get("priced") is False and cfg.budget.max_cost_usd is not None:
        db.event("warning", message=f"no price known for {synth.name}: its cost counts as $0 against --max-cost-usd")
        print(f"warning: no price known for {synth.name}; --max-cost-usd cannot limit it "
              "(add it to a price table: --set llm.pricing=FILE.yaml)", file=__import__("sys").stderr)
    db.set_meta("task", task.describe())
    engine = Engine(cfg, task, synth, executor, db, run_dir, progress)
    try:
        asyncio.run(_search(engine))
    finally:
        executor.close()
    summary = summarize(run_dir, db)
    write_report(run_dir, summary)
    db.close()
    return summary


async def _search(engine: Engine) -> None:
    # A task may own its loop (e.g. safety specifications: acting episodes, then reflection); it gets the
    # engine's recorded, budgeted primitives (ask / record / recorded / gate) instead of a generic strategy.
    own = getattr(engine.task, "search", None)
    strategy = own if callable(own) else STRATEGIES[engine.cfg.search.strategy]
    try:
        final = await strategy(engine)
    finally:
        await engine.synth.aclose()
    if engine.stopped:
        engine.db.event("budget_stop", reason=engine.stopped)
        engine.db.set_meta("stopped", engine.stopped)
    best = engine.best()
    champ = engine.db.get_meta("champion")  # a noise-aware champion (one_plus_one, kernel duels) outranks the max
    if champ is not None and champ in engine.candidates:
        best = engine.candidates[champ]
    finalists = []
    if best is not None:
        finalists.append(("best", best))
    if final is not None and final.sel_score is not None:
        finalists.append(("final", final))
    for c in engine.ranked()[: engine.cfg.gate.top_k]:
        finalists.append(("top", c))
    own_gate = getattr(engine.task, "gate", None)  # task-owned loops may score their held-out pool themselves
    await (own_gate(engine, finalists) if callable(own_gate) else engine.gate(finalists))
    engine.db.set_meta("best", best.id if best else None)
    engine.db.set_meta("final", final.id if final else None)
    engine.db.set_meta("wall_s", engine.budget.wall_s)
    engine.db.set_meta("status", "stopped: " + engine.stopped if engine.stopped else "completed")
    engine.db.event("end", status=engine.db.get_meta("status"))
