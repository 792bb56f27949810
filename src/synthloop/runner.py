"""Start, resume and finish a run: wires config, task, synthesizer, executor, store and engine together."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from synthloop.config import ConfigError, RunConfig, build_config
from synthloop.execution import make_executor
from synthloop.llm.factory import make_synthesizer, resolve_model
from synthloop.loop.engine import Engine, SynthesizerUnusable
from synthloop.loop.strategies import STRATEGIES
from synthloop.store.db import RunDB
from synthloop.store.lock import RunInUse, RunLock, in_use_message, is_locked
from synthloop.tasks.registry import make_task

Progress = Callable[[dict[str, Any]], None]


def new_run_id(task: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{task.replace('/', '-')}-{secrets.token_hex(3)}"


def preflight(task: Any, executor: str) -> None:
    """What a run needs installed, checked before its run directory exists: the executor's extra (ray) and
    the task's own (``require_installed``, e.g. cupy for ``--backend cuda``); each missing one is one line."""
    from synthloop.execution import check_executor

    check_executor(executor)
    need = getattr(task, "require_installed", None)
    if callable(need):
        need()


def prepare_run(cfg: RunConfig, announce: Callable[[str], None] = print) -> Path:
    """Resolve the model, create the run directory with config.yaml and an empty database."""
    model, line = resolve_model(cfg.llm.model, os.environ)
    explicit = cfg.llm.model is not None
    cfg = cfg.model_copy(update={"llm": cfg.llm.model_copy(update={"model": model})})
    task = make_task(cfg.task, cfg.task_options)
    preflight(task, cfg.execution.executor)  # sweeps come here without the CLI's own check
    if model == "mutate":  # decided from the task's declared artifact language, before any directory exists
        from synthloop.llm.mutate import offline_refusal
        refusal = offline_refusal(cfg.task, task.language, explicit)
        if refusal:
            raise ConfigError(refusal)
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
    """Run (or continue) the search in ``run_dir``, then the held-out gate, then write the report.

    The run's stored status always says how it ended: ``completed`` (or ``stopped: <budget>``), ``failed``
    with a one-line ``error`` (the synthesizer's endpoint is unusable: returned, not raised; or an unexpected
    exception: re-raised), or ``interrupted`` (Ctrl-C or SIGTERM: KeyboardInterrupt is re-raised after the
    executor is closed and the database written). The process holds the run lock throughout, so a second
    process gets a one-line ConfigError and a run that died without an end shows as stale.
    """
    from synthloop.report.summary import summarize, write_report

    cfg = load_run_config(run_dir)
    if iterations is not None:
        cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update={"iterations": iterations})})
    if is_locked(run_dir):  # before forking a sandbox for nothing
        raise ConfigError(in_use_message(run_dir))
    task = make_task(cfg.task, cfg.task_options)
    # The local executor forks its zygote here, so it must happen before anything secret or writable exists in
    # this process: no LLM client (API keys on the heap), no open run database, no threads, no event loop.
    executor = make_executor(cfg.execution.executor, task, cfg.task, cfg.task_options, cfg.execution.workers,
                             cfg.execution.ray_address)
    executor.start()
    lock = RunLock(run_dir)  # taken after the fork; a POSIX lock is not inherited by the sandbox anyway
    try:
        lock.acquire()
        synth = make_synthesizer(
            cfg.llm.model or "mutate", base_url=cfg.llm.base_url, max_attempts=cfg.llm.max_attempts,
            backoff_base_s=cfg.llm.backoff_base_s, pricing_path=cfg.llm.pricing,
        )
    except RunInUse as e:
        executor.close()
        raise ConfigError(str(e)) from None
    except BaseException:
        executor.close()
        lock.release()
        raise
    db = RunDB(run_dir / "run.sqlite")
    try:
        with sigterm_as_interrupt():
            try:
                engine = _start(cfg, task, synth, executor, db, run_dir, progress)
                try:
                    asyncio.run(_search(engine))
                finally:
                    executor.close()
            except KeyboardInterrupt:
                _end(db, "interrupted")
                raise
            except SynthesizerUnusable as e:
                _end(db, "failed", str(e))
            except Exception as e:
                _end(db, "failed", f"{type(e).__name__}: {e}".splitlines()[0])
                raise
            summary = summarize(run_dir, db)
            write_report(run_dir, summary)
    finally:
        executor.close()
        db.close()
        lock.release()
    return summary


def _start(cfg: RunConfig, task: Any, synth: Any, executor: Any, db: RunDB, run_dir: Path,
           progress: Progress | None) -> Engine:
    """Journal the (re)start, mark the run running and build its engine."""
    resumed = bool(db.candidates())
    db.event("resume" if resumed else "start", pid=os.getpid(), iterations=cfg.search.iterations)
    db.set_meta("status", "running")
    db.set_meta("error", None)  # a resumed failed run: its old cause no longer holds
    desc = synth.describe()
    db.set_meta("synthesizer", desc)
    if desc.get("priced") is False and cfg.budget.max_cost_usd is not None:
        why = desc.get("unpriced_reason") or f"no price known for {synth.name}"
        db.event("warning", message=f"{why}: its cost counts as $0 against --max-cost-usd")
        print(f"warning: {why}; --max-cost-usd cannot limit it "
              "(add it to a price table: --set llm.pricing=FILE.yaml)", file=sys.stderr)
    db.set_meta("task", task.describe())
    engine = Engine(cfg, task, synth, executor, db, run_dir, progress)
    engine.fail_fast = True  # an unreachable endpoint or a rejected key ends the run at its first call
    return engine


def _end(db: RunDB, status: str, error: str | None = None) -> None:
    """Record how a run ended when it did not reach the end of its search."""
    db.set_meta("status", status)
    db.set_meta("error", error)
    db.event("end", status=status, **({"error": error} if error else {}))


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM takes Ctrl-C's road: the search is cancelled, the executor closed, the run
    recorded as interrupted. Only the main thread can own signal handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: Any) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):  # asyncio.run's handler cancels the main task; outside it, KeyboardInterrupt
            handler(signal.SIGINT, frame)
        else:  # SIGINT ignored (a background job): stop all the same
            raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def completed_target(run_dir: Path) -> tuple[str | None, int | None]:
    """The run's stored status and the iteration target of its last session (None when never started)."""
    db = RunDB(run_dir / "run.sqlite", readonly=True)
    try:
        starts = [e for e in db.events() if e["kind"] in ("start", "resume")]
        return db.get_meta("status"), (starts[-1].get("iterations") if starts else None)
    finally:
        db.close()


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
    champ = engine.candidates.get(engine.db.get_meta("champion"))  # type: ignore[arg-type]
    if champ is not None and champ.sel_score is not None:  # a noise-aware champion (one_plus_one, kernel
        best = champ  # duels) outranks the max; an invalid one (nothing valid was found) is no finalist
    finalists = []
    if best is not None:
        finalists.append(("best", best))
    if final is not None and final.sel_score is not None:
        finalists.append(("final", final))
    for c in engine.ranked()[: engine.cfg.gate.top_k]:
        finalists.append(("top", c))
    own_gate = getattr(engine.task, "gate", None)  # task-owned loops may score their held-out pool themselves
    if not finalists:  # nothing valid: no held-out evaluation to spend, and "passed" would be a lie
        engine.db.set_meta("gate", {"status": "not run: no valid candidate", "rows": []})
        engine.db.event("gate", status="not run: no valid candidate")
    else:
        await (own_gate(engine, finalists) if callable(own_gate) else engine.gate(finalists))
    engine.db.set_meta("best", best.id if best else None)
    engine.db.set_meta("final", final.id if final else None)
    engine.db.set_meta("wall_s", engine.budget.wall_s)
    engine.db.set_meta("status", "stopped: " + engine.stopped if engine.stopped else "completed")
    engine.db.event("end", status=engine.db.get_meta("status"))
