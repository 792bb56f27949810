"""Search strategies over the engine's primitives.

* ``refine``: K+1 generations. Generation 0 is the task's seed (or a zero-shot
  proposal); each later generation refines a parent (the latest or the best so
  far, on the selection pool) with the history of earlier iterations' feedback.
* ``one_plus_one``: the parent is always the champion; a child replaces it only
  when its selection score beats the champion's by more than the measured
  noise (``noise_z`` standard errors of the difference, from ``noise_repeats``
  evaluations each) and ``min_delta``.
* ``best_of_n``: N independent proposals from the seed; the best on the
  selection pool wins.

Each strategy is a deterministic function of stored results, which is what
lets ``resume`` replay it: addresses already done come back from the store.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from typing import Any

from synthloop.loop.budget import BudgetExhausted
from synthloop.loop.engine import Candidate, Engine

IMPROVE = "Improve the current artifact so that it scores higher. Keep what works; fix what the feedback shows is wrong."
FROM_SCRATCH = "Write the artifact from scratch, following the problem description."


async def _initial(engine: Engine) -> Candidate:
    seed = await engine.seed_candidate()
    if seed is not None:
        return seed
    return await engine.propose(0, 0, None, [], FROM_SCRATCH)


def _width(engine: Engine) -> int:
    return engine.cfg.search.concurrency


def _recent(engine: Engine, history: list[Candidate], default: int | None) -> list[Candidate]:
    """The history a prompt shows: FeedbackSpec.history if set, else the strategy's default."""
    n = engine.cfg.feedback.history if engine.cfg.feedback.history is not None else default
    if n is None:
        return list(history)
    return history[-n:] if n else []


async def _generation(engine: Engine, gen: int, n: int, parent: Candidate | None, history: list[Candidate],
                      instruction: str) -> list[Candidate]:
    """n proposals of one generation, concurrently; a budget stop keeps those that completed."""
    tasks = [asyncio.ensure_future(engine.propose(gen, s, parent, history, instruction)) for s in range(n)]
    done: list[Candidate] = []
    budget_reason: str | None = None
    for t in tasks:
        try:
            done.append(await t)
        except BudgetExhausted as e:
            budget_reason = e.reason
    if budget_reason and engine.stopped is None:
        engine.stopped = budget_reason
    return done


async def refine(engine: Engine) -> Candidate | None:
    cfg = engine.cfg.search
    first = await _initial(engine)
    history = [first]
    latest = first
    for gen in range(1, cfg.iterations + 1):
        if engine.stopped:
            break
        best = engine.best()
        parent = (best or latest) if cfg.parent == "best" else latest
        kids = await _generation(engine, gen, 1, parent, _recent(engine, history, None), IMPROVE)
        if not kids:
            break
        latest = kids[0]
        history.append(latest)
    return latest


def _noise_margin(champ: Candidate, child: Candidate, z: float) -> float:
    a = [float(e.score) for e in champ.selection_evals() if e.valid]  # type: ignore[arg-type]
    b = [float(e.score) for e in child.selection_evals() if e.valid]  # type: ignore[arg-type]
    va = statistics.variance(a) if len(a) > 1 else 0.0
    vb = statistics.variance(b) if len(b) > 1 else 0.0
    return z * math.sqrt(va / max(len(a), 1) + vb / max(len(b), 1))


async def one_plus_one(engine: Engine) -> Candidate | None:
    cfg = engine.cfg.search
    champ = await _initial(engine)
    if champ.sel_score is not None and cfg.noise_repeats > 1:
        await engine.ensure_repeats(champ, cfg.noise_repeats)
    history: list[Candidate] = [champ]
    width = _width(engine)
    gen, made = 0, 0
    while made < cfg.iterations and not engine.stopped:
        gen += 1
        n = min(width, cfg.iterations - made)
        parent = champ if champ.artifact is not None else None
        kids = await _generation(engine, gen, n, parent, _recent(engine, history, 5),
                                 IMPROVE if parent else FROM_SCRATCH)
        made += n
        history.extend(kids)
        if cfg.noise_repeats > 1:
            await asyncio.gather(*(engine.ensure_repeats(k, cfg.noise_repeats) for k in kids
                                   if k.sel_score is not None))
        best_kid = max((k for k in kids if k.sel_score is not None), key=lambda k: k.sel_score, default=None)
        if best_kid is None:
            continue
        if champ.sel_score is None:
            champ = best_kid
            engine.db.event("accept", candidate=champ.id, generation=gen, margin=0.0)
            continue
        margin = max(cfg.min_delta, _noise_margin(champ, best_kid, cfg.noise_z))
        if best_kid.sel_score > champ.sel_score + margin:  # type: ignore[operator]
            engine.db.event("accept", candidate=best_kid.id, generation=gen, margin=margin)
            champ = best_kid
    engine.db.set_meta("champion", champ.id)
    return champ


async def best_of_n(engine: Engine) -> Candidate | None:
    cfg = engine.cfg.search
    first = await _initial(engine)
    parent = first if first.artifact is not None and first.origin == "seed" else None
    kids = await _generation(engine, 1, cfg.iterations, parent, [], IMPROVE if parent else FROM_SCRATCH)
    return engine.best() or (kids[-1] if kids else first)


STRATEGIES: dict[str, Any] = {"refine": refine, "one_plus_one": one_plus_one, "best_of_n": best_of_n}
