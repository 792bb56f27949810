"""The measurement: r independent inner-loop replicates of one pipeline, scored on one sealed pool.

Outside the workspace and hashed before every use (:func:`frozen_manifest`):
the inner task, the engine, the sandbox, the store, the LLM plumbing and this
package. One replicate is one full inner loop (``refine``, K+1 generations)
with the pipeline plugged into :attr:`Engine.build_messages`; its search sees
the feedback cases (first ``feedback_cases`` of the pool) and, when the task
has one, the selection pool for its own best-so-far. The held-out pool is
removed from the engine during the search and used only by the final gate.

Which policy a replicate reports is a frozen rule (``pick``: the last
iteration, as in the reference, or the engine's best), and both values are
stored. Replicate ``i`` always uses LLM seed ``seed_base + i``, so the i-th
replicates of two pipelines form a pair for the keep rule.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from synthloop.autoresearch.pipeline import HelperExecutor, Pipeline, PipelineError, PipelineMessages
from synthloop.config import RunConfig
from synthloop.core.task import Task
from synthloop.core.types import CasePools, Evaluation
from synthloop.execution.base import Executor
from synthloop.llm.factory import make_synthesizer
from synthloop.loop.engine import Candidate, Engine
from synthloop.loop.strategies import refine
from synthloop.oversight.stats import t_quantile
from synthloop.runner import prepare_run
from synthloop.store.db import RunDB

Pick = Literal["last", "best"]


# ------------------------------------------------------------------ statistics
@dataclass(frozen=True)
class Stat:
    """Mean with a two-sided 95 % t interval; n=1 gives an infinite interval (one draw says nothing of noise)."""

    mean: float | None
    lo: float | None
    hi: float | None
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stat:
        if not values:
            return cls(None, None, None, 0)
        m = statistics.fmean(values)
        if len(values) < 2:
            return cls(m, -math.inf, math.inf, 1)
        half = t_quantile(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
        return cls(m, m - half, m + half, len(values))

    def to_dict(self) -> dict[str, Any]:
        def f(x: float | None) -> float | str | None:
            return x if x is None or math.isfinite(x) else ("inf" if x > 0 else "-inf")

        return {"mean": f(self.mean), "ci95": [f(self.lo), f(self.hi)], "n": self.n}


# ------------------------------------------------------------------ frozen measurement path
def measurement_sources(task: Task, extra: list[Path] | None = None) -> list[Path]:
    """Source files whose change would change what a score means: synthloop's engine path and the task's package."""
    import synthloop

    pkg = Path(synthloop.__file__).resolve().parent
    roots = [pkg / d for d in ("core", "loop", "feedback", "oversight", "execution", "llm", "store", "autoresearch")]
    files = [pkg / "config.py", pkg / "runner.py", pkg / "tasks" / "registry.py", pkg / "tasks" / "examples" / "_exec.py"]
    mod = sys.modules.get(type(task).__module__)
    if mod is not None and getattr(mod, "__file__", None):
        roots.append(Path(mod.__file__).resolve().parent)  # type: ignore[arg-type]
    for r in roots:
        files.extend(sorted(r.rglob("*.py")))
    files.extend(extra or [])
    return sorted({f.resolve() for f in files if f.exists()})


def frozen_manifest(task: Task, extra: list[Path] | None = None) -> dict[str, str]:
    """sha256 of every frozen source file, plus the task's seed pools and options (the seed pools are frozen too)."""
    out = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in measurement_sources(task, extra)}
    pools = task.pools()
    blob = repr([[c.to_dict() for c in pools.get(p)] for p in ("feedback", "selection", "heldout")])
    out["<task pools>"] = hashlib.sha256(blob.encode()).hexdigest()
    out["<task options>"] = hashlib.sha256(task.options.model_dump_json().encode()).hexdigest()
    return out


def manifest_mismatch(pinned: dict[str, str], now: dict[str, str]) -> list[str]:
    return sorted(k for k in set(pinned) | set(now) if pinned.get(k) != now.get(k))


# ------------------------------------------------------------------ one measurement
@dataclass
class Replicate:
    index: int
    value: float | None  # the objective of the picked policy on the scored pool (None: no valid policy)
    last: float | None
    best: float | None
    error: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    llm_calls: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class Measurement:
    pool: str
    replicates: list[Replicate] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def values(self) -> list[float | None]:
        return [r.value for r in self.replicates]

    @property
    def stat(self) -> Stat:
        return Stat.of([v for v in self.values if v is not None])

    @property
    def n_failed(self) -> int:
        return sum(v is None for v in self.values)

    @property
    def tokens(self) -> int:
        return sum(r.tokens for r in self.replicates)

    @property
    def cost_usd(self) -> float:
        return sum(r.cost_usd for r in self.replicates)

    @property
    def errors(self) -> list[str]:
        return sorted({r.error for r in self.replicates if r.error})


@dataclass
class InnerSetup:
    """Everything frozen about the inner loop, fixed when the run starts."""

    task: Task
    task_name: str
    task_options: dict[str, Any]
    objective: str
    synth_model: str
    synth_base_url: str | None = None
    pick: Pick = "last"
    seed_base: int = 0
    max_tokens: int = 4096
    max_attempts: int = 3
    backoff_base_s: float = 1.0


def objective_of(ev: Evaluation | None, objective: str) -> float | None:
    """The objective read from an Evaluation: ``score`` or a named metric; None when invalid or absent."""
    if ev is None or not ev.valid:
        return None
    v = ev.score if objective == "score" else ev.metrics.get(objective)
    return float(v) if v is not None and math.isfinite(float(v)) else None


class Measurer:
    """Runs replicates of the inner loop on the harness's executors (started once, in the main thread)."""

    def __init__(self, setup: InnerSetup, executor: Executor, builder: Executor, root: Path) -> None:
        self.s = setup
        self.executor = executor
        self.builder = builder
        self.root = root
        self.full_pools = setup.task.pools()
        self.score_pool = "selection" if self.full_pools.selection else "feedback"

    def measure(self, pipeline: Pipeline, label: str, replicates: int, pool: str | None = None,
                seed_offset: int = 0, max_cost_usd: float | None = None) -> Measurement:
        """r replicates of ``pipeline``, scored on ``pool`` (default: selection, or feedback if the task has none)."""
        import time

        pool = pool or self.score_pool
        t0 = time.monotonic()
        reps = asyncio.run(self._all(pipeline, label, replicates, pool, seed_offset, max_cost_usd))
        return Measurement(pool, reps, time.monotonic() - t0)

    async def _all(self, pipeline: Pipeline, label: str, r: int, pool: str, seed_offset: int,
                   max_cost_usd: float | None) -> list[Replicate]:
        per_rep = max_cost_usd / r if max_cost_usd is not None else None
        return list(await asyncio.gather(*(self._one(pipeline, label, i, pool, seed_offset, per_rep)
                                           for i in range(r))))

    async def _one(self, pipeline: Pipeline, label: str, i: int, pool: str, seed_offset: int,
                   max_cost_usd: float | None) -> Replicate:
        s = self.s
        c = pipeline.config
        cfg = RunConfig.model_validate({
            "task": s.task_name, "task_options": s.task_options, "feedback": c.feedback_spec().model_dump(),
            "llm": {"model": s.synth_model, "base_url": s.synth_base_url, "seed": s.seed_base + seed_offset + i,
                    "max_tokens": s.max_tokens, "max_attempts": s.max_attempts, "backoff_base_s": s.backoff_base_s},
            "search": {"strategy": "refine", "iterations": c.iterations, "retries": c.retries, "parent": c.parent,
                       "diffs": False},
            "budget": {"max_cost_usd": max_cost_usd} if max_cost_usd else {},
            "out": str(self.root / f"{label}_r{i}"),
        })
        run_dir = prepare_run(cfg, announce=lambda _: None)
        db = RunDB(run_dir / "run.sqlite")
        synth = make_synthesizer(s.synth_model, base_url=s.synth_base_url, max_attempts=s.max_attempts,
                                 backoff_base_s=s.backoff_base_s)
        engine = Engine(cfg, s.task, synth, HelperExecutor(self.executor, pipeline.helpers), db, run_dir)
        fp = self.full_pools
        # the search never sees held-out cases; feedback is the first `feedback_cases` of the pool
        engine.pools = CasePools(feedback=fp.feedback[: c.feedback_cases], selection=fp.selection)
        rep = Replicate(i, None, None, None)
        try:
            engine.build_messages = PipelineMessages(pipeline, s.task, s.objective, self.builder)
            final = await refine(engine)
            best = self._best(engine)
            picked = final if s.pick == "last" else best
            trimmed = c.feedback_cases < len(fp.feedback)
            rep.last = await self._score(engine, final, pool, trimmed)
            rep.best = rep.last if best is final else await self._score(engine, best, pool, trimmed)
            rep.value = rep.last if s.pick == "last" else rep.best
            if picked is None or rep.value is None:
                rep.error = "no valid policy from the inner loop" if picked is None else (
                    f"the picked policy is invalid on the scored pool or lacks the objective {s.objective!r}")
        except PipelineError as e:
            rep.error = str(e)
        except Exception as e:  # noqa: BLE001 - one broken replicate is a recorded failure, not a crashed run
            rep.error = f"inner loop failed: {type(e).__name__}: {e}"
        finally:
            await synth.aclose()
            totals = db.llm_totals()
            rep.input_tokens, rep.output_tokens = int(totals["input_tokens"]), int(totals["output_tokens"])
            rep.cost_usd = float(totals["cost_usd"])
            rep.llm_calls = int(totals["calls"])
            db.set_meta("autoresearch", {"pool": pool, "pick": s.pick, "last": rep.last, "best": rep.best,
                                         "error": rep.error, "pipeline_commit": pipeline.commit})
            db.close()
        return rep

    def _best(self, engine: Engine) -> Candidate | None:
        """The search's best by the *outer objective* on its selection evaluations (ties: the earliest)."""
        names = {m.name: m.direction for m in self.s.task.objectives()}
        sign = -1.0 if names.get(self.s.objective) == "min" else 1.0
        scored = [(objective_of(c.selection_evals()[0], self.s.objective), c) for c in engine.candidates.values()
                  if c.selection_evals()]
        valid = [(sign * v, -c.id, c) for v, c in scored if v is not None]
        return max(valid, key=lambda t: (t[0], t[1]))[2] if valid else None

    async def _score(self, engine: Engine, cand: Candidate | None, pool: str, trimmed: bool) -> float | None:
        """The objective of ``cand`` on ``pool``: reuse the search's evaluation, else evaluate now (held-out)."""
        if cand is None or cand.artifact is None:
            return None
        evs = cand.evals.get(pool)
        if not evs or (pool == "feedback" and trimmed):  # score on the whole, fixed pool, never a knob's subset
            engine.pools = self.full_pools
            ev = (await engine.evaluate(cand.artifact, [pool]))[pool]
            engine.db.add_evaluation(cand.id, ev, repeat=100)
            evs = [ev]
        return objective_of(evs[0], self.s.objective)
