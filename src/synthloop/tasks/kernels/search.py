"""The kernel search loop: noise-aware (1+1) as in the spec, plus refine and best-of-n, on the engine.

The runner calls :func:`run_search` (through ``KernelSearchTask.search``) instead of the generic strategies,
because kernels need three things those do not have:

* **Noise-aware promotion** (spec §7.1). A correct candidate replaces the incumbent only after a *duel*:
  both timed interleaved in one sandboxed process, a bootstrap CI on the per-size log ratios, promotion
  when the geometric-mean CI lies above ``1 + promote_delta`` and no size drops below 0.95x. Comparing two
  selection scores measured at different moments is what let the original promote cache and launch noise.
* **Kernel prompts** (prompts.py): previous and best kernels, history with duel outcomes, per-size
  diagnostics, trimmed compile errors, the host's launch configuration, a stagnation hint.
* **Compile errors are retryable.** A proposal with no code, a static-check rejection or a compile error is
  re-asked up to ``search.retries`` times with the (trimmed) error shown; a wrong result is not retried, it
  is feedback for the next iteration.

Bookkeeping. Every step goes through the engine's recorded primitives: ``ask`` (journaled, budgeted,
reused on resume), ``record`` (candidate + evaluations), ``recorded`` (resume). A duel is stored as an
evaluation in pool ``duel`` of the candidate, so a resumed run replays the same promotions without timing
again. Evaluations run one case at a time under a lock: timings taken while another case runs on the same
cores would be noise (the engine's own ``evaluate`` runs a pool's cases in parallel).

The held-out configurations are fingerprinted into the run's metadata before the first proposal
(``heldout_fingerprint``) and checked again by the gate; nothing in this module reads the held-out pool.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from synthloop.core.types import Artifact, Case, CaseResult, Evaluation
from synthloop.loop.budget import BudgetExhausted
from synthloop.loop.engine import judge_outcome
from synthloop.tasks.kernels.prompts import (
    Attempt,
    iteration_prompt,
    launch_configuration,
    retry_prompt,
    system_prompt,
    trim_compile_error,
)

if TYPE_CHECKING:
    from synthloop.loop.engine import Candidate, Engine
    from synthloop.tasks.kernels.task import KernelOptions, KernelSearchTask

RETRYABLE = ("compile", "static_check")
DUEL_POOL = "duel"


class KernelLoop:
    """Shared machinery of the three strategies (one instance per run)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.task: KernelSearchTask = engine.task  # type: ignore[assignment]  # only kernel tasks get here
        self.opts: KernelOptions = self.task.options
        self.cfg = engine.cfg
        self.lock = asyncio.Lock()
        sizes = self.task._sizes("in")
        self.ladder = [s.to_dict() for s in sizes]
        launch = launch_configuration(self.task.spec, sizes, self.opts.backend, self.opts.threads)
        self.system = system_prompt(self.task.brief(), launch, self.task.language, self.opts.promote_delta)
        self.promotions: list[dict[str, Any]] = []

    # ---- evaluation (serialised) ------------------------------------------
    async def run_cases(self, art: Artifact, cases: list[Case]) -> list[CaseResult]:
        """Run cases one at a time in the sandbox (never two timings at once) and judge them here."""
        results = []
        async with self.lock:
            for case in cases:
                out = (await self.engine.executor.run(art, [case], self.engine.limits))[0]
                results.append(judge_outcome(self.task, art, case, out))
        return results

    async def evaluate_pool(self, art: Artifact, pool: str) -> Evaluation:
        cases = self.engine.pools.get(pool)
        res = await self.run_cases(art, cases)
        try:
            ev = self.task.aggregate(art, pool, res)
        except Exception as e:
            ev = Evaluation.invalid(f"aggregation failed: {type(e).__name__}: {e}", pool=pool, error_kind="judge")
        ev.pool = pool
        return ev

    async def evaluate_search(self, art: Artifact) -> dict[str, Evaluation]:
        """Feedback pool, then (if correct there) the fresh-input selection pool."""
        evs = {"feedback": await self.evaluate_pool(art, "feedback")}
        if evs["feedback"].valid and self.engine.pools.selection:
            evs["selection"] = await self.evaluate_pool(art, "selection")
        return evs

    async def duel(self, incumbent: Artifact, cand: Artifact, sizes: list[dict[str, Any]],
                   pairs: int | None = None) -> CaseResult:
        """Interleaved timing of ``cand`` against ``incumbent`` on ``sizes`` (judged: decision in private)."""
        case = self.task.duel_case(incumbent.content, sizes, pairs)
        return (await self.run_cases(cand, [case]))[0]

    # ---- attempts and prompts -----------------------------------------------
    @staticmethod
    def attempt(c: Candidate) -> Attempt:
        duel = None
        stored = c.evals.get(DUEL_POOL)
        if stored:
            ev = stored[0]
            d = ev.private.get("decision", {}) if ev.valid else {}
            duel = {"incumbent": ev.private.get("incumbent"), "speedup": d.get("speedup"),
                    "ci_low": d.get("ci_low"), "ci_high": d.get("ci_high"), "promote": bool(d.get("promote")),
                    "reason": d.get("reason") or "; ".join(ev.diagnostics)[:200]}
        return Attempt(c.id, c.generation, c.slot, c.artifact, c.feedback, c.note, c.origin, duel)

    def messages(self, previous: Candidate, best: Candidate, history: list[Candidate],
                 first: bool, slot: int = 0, of: int = 1) -> list[dict[str, str]]:
        user = iteration_prompt(self.task, self.cfg.feedback, self.attempt(previous), self.attempt(best),
                                [self.attempt(h) for h in history], self.opts.backend, first=first,
                                slot=slot, of=of)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    async def propose(self, gen: int, slot: int, previous: Candidate, best: Candidate, history: list[Candidate],
                      first: bool = False, parent: Candidate | None = None, of: int = 1) -> Candidate:
        """One candidate at (gen, slot) with retries for unusable answers. Raises BudgetExhausted only
        before its first LLM call.

        ``parent`` (default, and when it has no code: ``best``) is the kernel the child descends from: it
        is recorded as such and handed to the synthesizer, which is how an offline baseline (``mutate``)
        gets code to perturb; a model reads both kernels in the prompt. ``of`` proposals of one generation share a context, so the
        prompt numbers them (identical requests would get identical answers from a seeded synthesizer).
        """
        done = self.engine.recorded(gen, slot)
        if done is not None:
            return done
        parent = parent if parent is not None and parent.artifact is not None else best
        messages = self.messages(previous, best, history, first, slot, of)
        lang = self.task.language

        async def check(code: str) -> tuple[str, dict[str, Evaluation]]:
            """Static check, then the search pools; only compile and static-check failures are retried."""
            art = Artifact(code, lang)
            problems = self.task.validate(art)
            if problems:
                return "static check rejected the kernel: " + "; ".join(problems), {}
            evals = await self.evaluate_search(art)
            fb = evals["feedback"]
            if fb.valid or not any(k in (fb.error_kind or "") for k in RETRYABLE):
                return "", evals
            return trim_compile_error("\n".join(d.split("] ", 1)[-1] for d in fb.diagnostics)), evals

        answer = await self.engine.ask_for_code(gen, slot, messages, check, parent=parent.artifact,
                                                retry=retry_prompt)
        final = Artifact(answer.code, lang) if answer.code is not None else None
        status = "evaluated" if answer.status == "ok" else answer.status
        return self.engine.record(gen, slot, parent, final, answer.checked or {}, status=status,
                                  note=answer.error, attempts=answer.attempts)

    async def generation(self, gen: int, n: int, previous: Candidate, best: Candidate, history: list[Candidate],
                         first: bool = False, parent: Candidate | None = None) -> list[Candidate]:
        """``n`` proposals of one generation (LLM calls concurrent, evaluations serialised)."""
        tasks = [asyncio.ensure_future(self.propose(gen, s, previous, best, history, first, parent, n))
                 for s in range(n)]
        kids = []
        for t in tasks:
            try:
                kids.append(await t)
            except BudgetExhausted as e:
                if self.engine.stopped is None:
                    self.engine.stopped = e.reason
        return kids

    async def challenge(self, champ: Candidate, kid: Candidate, gen: int) -> bool:
        """Duel ``kid`` against ``champ`` (stored; reused on resume); True if it is promoted."""
        stored = kid.evals.get(DUEL_POOL)
        if stored:  # replayed on resume: same decision, no new event
            ev = stored[0]
        elif kid.artifact is not None and champ.artifact is not None and \
                kid.artifact.content.strip() == champ.artifact.content.strip():
            ev = Evaluation.invalid("identical to the incumbent", pool=DUEL_POOL, error_kind="identical")
            ev.private["incumbent"] = champ.id
            self._store(kid, ev)
        else:
            assert champ.artifact is not None and kid.artifact is not None  # only scored candidates duel
            res = await self.duel(champ.artifact, kid.artifact, self.ladder)
            ev = Evaluation(valid=res.ok, score=res.score if res.ok else None, metrics=res.metrics,
                            diagnostics=res.diagnostics, private={**res.private, "incumbent": champ.id},
                            cases=[res], pool=DUEL_POOL, error_kind=res.error_kind)
            self._store(kid, ev)
        d = ev.private.get("decision", {}) if ev.valid else {}
        promoted = bool(d.get("promote"))
        if promoted:
            row = {"candidate": kid.id, "generation": gen, "incumbent": champ.id, "speedup": d["speedup"],
                   "ci_low": d["ci_low"], "ci_high": d["ci_high"]}
            self.promotions.append(row)
            if not stored:
                self.engine.db.event("promote", **row)
        return promoted

    def _store(self, kid: Candidate, ev: Evaluation) -> None:
        self.engine.db.add_evaluation(kid.id, ev)
        kid.evals[DUEL_POOL] = [ev]

    def finish(self, champ: Candidate) -> Candidate:
        self.engine.db.set_meta("champion", champ.id if champ is not None else None)
        self.engine.db.set_meta("promotions", self.promotions)
        return champ


def _freeze_heldout(loop: KernelLoop) -> None:
    """Store the held-out fingerprint before any proposal; a resumed run must find the same one."""
    engine = loop.engine
    fp = loop.task.heldout_fingerprint()
    stored = engine.db.get_meta("heldout_fingerprint")
    if stored is not None and stored != fp:
        raise RuntimeError(f"held-out configurations changed since the run started ({stored} -> {fp}); "
                           "start a new run instead of resuming this one")
    engine.db.set_meta("heldout_fingerprint", fp)


async def one_plus_one(loop: KernelLoop, seed: Candidate) -> Candidate:
    """Spec §2.1 with noise-aware promotion: previous and incumbent shown, a duel decides promotion."""
    cfg = loop.cfg.search
    champ, prev, history = seed, seed, [seed]
    gen = made = 0
    while made < cfg.iterations and not loop.engine.stopped:
        gen += 1
        n = min(cfg.concurrency, cfg.iterations - made)
        kids = await loop.generation(gen, n, prev, champ, history, first=gen == 1)
        if not kids:
            break
        made += n
        history.extend(kids)
        prev = kids[-1]
        valid = sorted((k for k in kids if k.sel_score is not None), key=lambda k: -(k.sel_score or 0.0))
        for kid in valid[:1]:  # the best child by selection score challenges the incumbent
            if await loop.challenge(champ, kid, gen):
                champ = kid
    return loop.finish(champ)


async def refine(loop: KernelLoop, seed: Candidate) -> Candidate:
    """K refinements of the latest (or best) candidate, no duels; returns the latest (like the generic one)."""
    cfg = loop.cfg.search
    latest, history = seed, [seed]
    for gen in range(1, cfg.iterations + 1):
        if loop.engine.stopped:
            break
        best = loop.engine.best() or latest
        parent = best if cfg.parent == "best" else latest
        kids = await loop.generation(gen, 1, parent, best, history, first=gen == 1, parent=parent)
        if not kids:
            break
        latest = kids[0]
        history.append(latest)
    loop.engine.db.set_meta("champion", latest.id)
    return latest


async def best_of_n(loop: KernelLoop, seed: Candidate) -> Candidate:
    """N independent children of the seed; the best by selection score wins only if its duel against the
    seed shows a significant speedup (otherwise the seed stays: a noise win is not a win)."""
    kids = await loop.generation(1, loop.cfg.search.iterations, seed, seed, [seed], first=True)
    valid = sorted((k for k in kids if k.sel_score is not None), key=lambda k: -(k.sel_score or 0.0))
    champ = seed
    if valid and await loop.challenge(seed, valid[0], 1):
        champ = valid[0]
    return loop.finish(champ)


STRATEGIES = {"one_plus_one": one_plus_one, "refine": refine, "best_of_n": best_of_n}


async def run_search(engine: Engine) -> Candidate | None:
    """Entry point for ``KernelSearchTask.search``: freeze the held-out set, evaluate the seed, dispatch."""
    loop = KernelLoop(engine)
    _freeze_heldout(loop)
    seed = await engine.seed_candidate()
    if seed is None or seed.sel_score is None:  # spec §1.6: a failing seed aborts the run
        engine.db.event("seed_failed", diagnostics=(seed.feedback.diagnostics[:20] if seed and seed.feedback else []))
        engine.stopped = engine.stopped or "the seed kernel failed its own evaluation"
        return seed
    return await STRATEGIES[engine.cfg.search.strategy](loop, seed)
