"""The engine: proposes candidates through a synthesizer, evaluates them in the executor, records everything.

Strategies (``strategies.py``) decide *which* parent to refine and *what* to
keep; the engine supplies the primitives they share:

* :meth:`Engine.propose` asks the synthesizer for a child of a parent, retries
  invalid answers (no code, syntax error, validator rejection) up to R times
  showing the model the failing code and the error, then evaluates the child
  on the feedback and selection pools. A proposal that still fails is recorded
  and returned as an invalid candidate: one bad candidate never aborts a run.
* Every step is journaled in the run database the moment it completes. Each
  proposal has a fixed address ``(generation, slot)``; on resume the strategy
  replays its loop and the engine returns stored results for addresses already
  done (an evaluation is never recomputed; a stored LLM answer is reused), so a
  crash loses only the work that was in flight.
* :meth:`Engine.gate` scores finalists once on the held-out pool.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from synthloop.config import RunConfig
from synthloop.core.task import Task
from synthloop.core.types import Artifact, Case, CaseResult, Evaluation
from synthloop.execution.base import CaseOutcome, Executor, Limits
from synthloop.feedback.prompt import PromptItem, proposal_messages, retry_message
from synthloop.llm.base import LLMError, LLMRequest, LLMResponse, Synthesizer, Usage
from synthloop.llm.extract import ExtractionError, extract_code
from synthloop.llm.retry import unusable_endpoint
from synthloop.loop.budget import Budget, BudgetExhausted
from synthloop.store.db import RunDB

EXT = {"python": "py", "c": "c", "cuda": "cu", "text": "txt"}

Messages = list[dict[str, str]]
#: ``(task, spec, diffs, parent, history, instruction) -> messages`` (or an awaitable of them); see
#: :attr:`Engine.build_messages`.
MessageBuilder = Callable[..., "Messages | Awaitable[Messages]"]


@dataclass
class Candidate:
    id: int
    generation: int
    slot: int
    parent_id: int | None
    artifact: Artifact | None
    status: str  # evaluated | invalid | failed | proposed
    evals: dict[str, list[Evaluation]] = field(default_factory=dict)
    note: str = ""
    origin: str = "synth"

    @property
    def feedback(self) -> Evaluation | None:
        ev = self.evals.get("feedback")
        return ev[0] if ev else None

    def selection_evals(self) -> list[Evaluation]:
        return self.evals.get("selection") or self.evals.get("feedback") or []

    @property
    def sel_score(self) -> float | None:
        """Mean selection score over repeats; None if any repeat is invalid (or none exist)."""
        evs = self.selection_evals()
        if not evs or any(not e.valid for e in evs):
            return None
        return statistics.fmean(float(e.score) for e in evs)  # type: ignore[arg-type]

    def prompt_item(self) -> PromptItem:
        return PromptItem(self.id, self.generation, self.artifact, self.feedback, self.note)


def _rank_key(c: Candidate) -> tuple[float, int]:
    s = c.sel_score
    return (s if s is not None else -math.inf, -c.id)


def judge_outcome(task: Task, artifact: Artifact, case: Case, out: CaseOutcome) -> CaseResult:
    """Score one sandbox outcome in the trusted process; a failed case or a hostile output becomes a failed result."""
    if not out.ok:
        diag = [out.error.strip() or f"failed ({out.error_kind})"]
        if out.stderr.strip():
            diag.append("stderr (tail): " + out.stderr.strip()[-1500:])
        return CaseResult(case.id, ok=False, diagnostics=diag, error_kind=out.error_kind, wall_s=out.wall_s)
    try:
        res = task.judge(artifact, case, out.output)
    except Exception as e:  # hostile output must not crash the engine
        return CaseResult(case.id, ok=False, diagnostics=[f"output rejected by the judge: {type(e).__name__}: {e}"],
                          error_kind="judge", wall_s=out.wall_s)
    res.wall_s = out.wall_s
    return res


async def run_and_judge(executor: Executor, task: Task, artifact: Artifact, cases: list[Case],
                        limits: Limits) -> list[CaseResult]:
    """Run ``cases`` in the executor in parallel and judge each one as soon as its outcome arrives.

    Judging (e.g. replaying an episode to recompute its rewards) then overlaps the cases still
    running instead of starting after the slowest one. Results come back in the order of ``cases``.
    """

    async def one(case: Case) -> CaseResult:
        out = (await executor.run(artifact, [case], limits))[0]
        return judge_outcome(task, artifact, case, out)

    if len(cases) == 1:  # no task in between: the job is handed over in the caller's first step
        return [await one(cases[0])]
    return list(await asyncio.gather(*(one(c) for c in cases)))


@dataclass
class CodeAnswer:
    """The outcome of :meth:`Engine.ask_for_code`: accepted code (``status == "ok"``) or why there is none.

    ``status`` is ``"ok"``, ``"invalid"`` (no acceptable code after every attempt, or the budget ran out
    during retries) or ``"failed"`` (the synthesizer call itself failed). ``code`` is the last code seen,
    ``checked`` what the check returned for it (e.g. its evaluations), ``attempts`` the attempts made.
    """

    status: str
    code: str | None
    error: str
    attempts: int
    checked: Any = None


#: accepts or rejects one extracted code: ("", result) accepts; ("why", result) asks again
CodeCheck = Callable[[str], Awaitable[tuple[str, Any]]]


class SynthesizerUnusable(Exception):
    """The synthesizer's endpoint cannot be used at all (unreachable, key rejected): the run cannot go on.

    Not an :class:`LLMError`, so that loops which survive a failed call (``except LLMError``) let it through.
    The message is the one-line cause shown to the user.
    """


class Engine:
    def __init__(
        self,
        cfg: RunConfig,
        task: Task,
        synth: Synthesizer,
        executor: Executor,
        db: RunDB,
        run_dir: Path,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.task = task
        self.synth = synth
        self.executor = executor
        self.db = db
        self.run_dir = run_dir
        self.on_progress = on_progress or (lambda info: None)
        self.pools = task.pools()
        lim = task.limits
        if cfg.execution.wall_s:
            lim = replace(lim, wall_s=cfg.execution.wall_s)
        if cfg.execution.memory_mb:
            lim = replace(lim, memory_mb=cfg.execution.memory_mb)
        self.limits: Limits = lim
        b = cfg.budget
        totals = db.llm_totals()
        self.budget = Budget(
            max_cost_usd=b.max_cost_usd, max_llm_calls=b.max_llm_calls, max_wall_s=b.max_wall_s,
            cost_usd=totals["cost_usd"], llm_calls=totals["calls"], input_tokens=totals["input_tokens"],
            output_tokens=totals["output_tokens"], wall_before_s=float(db.get_meta("wall_s", 0.0)),
        )
        self.candidates: dict[int, Candidate] = {}
        self._best: Candidate | None = None
        self.stopped: str | None = None
        #: Builds the messages of one proposal. The default is the core prompt rendered through the run's
        #: FeedbackSpec; an outer loop (autoresearch) swaps in a researcher-edited pipeline here, which may be
        #: async because it runs untrusted code in the sandbox. Same arguments as ``proposal_messages``.
        self.build_messages: MessageBuilder = proposal_messages
        self._sem: asyncio.Semaphore | None = None
        #: stop the run (SynthesizerUnusable) when the first call of this session finds the endpoint unusable;
        #: set by the runner. Later failures are survived: by then the endpoint has been seen to work.
        self.fail_fast: bool = False
        self._answered = False  # a synthesizer call of this session succeeded (stored answers do not count)
        (run_dir / "artifacts").mkdir(parents=True, exist_ok=True)

    # ---- helpers ------------------------------------------------------
    @property
    def sem(self) -> asyncio.Semaphore:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.cfg.search.concurrency)
        return self._sem

    def best(self) -> Candidate | None:
        """Best so far on the selection pool (ties: the earliest); kept incrementally, O(1)."""
        return self._best

    def _add(self, cand: Candidate) -> None:
        self.candidates[cand.id] = cand
        if cand.sel_score is not None and (self._best is None or _rank_key(cand) > _rank_key(self._best)):
            self._best = cand

    def ranked(self) -> list[Candidate]:
        valid = [c for c in self.candidates.values() if c.sel_score is not None]
        return sorted(valid, key=_rank_key, reverse=True)

    def _progress(self, cand: Candidate) -> None:
        best = self.best()
        self.db.set_meta("wall_s", self.budget.wall_s)
        self.on_progress({
            "generation": cand.generation, "slot": cand.slot, "candidate": cand.id, "status": cand.status,
            "score": cand.sel_score, "best": best.sel_score if best else None,
            "tokens": self.budget.input_tokens + self.budget.output_tokens, "cost_usd": self.budget.cost_usd,
        })

    def _load(self, row: Any) -> Candidate:
        art = Artifact(row["content"], row["language"]) if row["content"] is not None else None
        cand = Candidate(row["id"], row["generation"], row["slot"], row["parent_id"], art, row["status"],
                         note=row["note"] or "", origin=row["origin"])
        for ev in self.db.evaluations(cand.id):
            cand.evals.setdefault(ev.pool, []).append(ev)
        return cand

    def _write_artifact(self, gen: int, slot: int, art: Artifact) -> str:
        rel = f"artifacts/g{gen:04d}_s{slot:02d}_{art.sha}.{EXT.get(art.language, 'txt')}"
        (self.run_dir / rel).write_text(art.content)
        return rel

    # ---- evaluation ---------------------------------------------------
    def _judge(self, artifact: Artifact, case: Case, out: CaseOutcome) -> CaseResult:
        return judge_outcome(self.task, artifact, case, out)

    async def evaluate(self, artifact: Artifact, pools: list[str]) -> dict[str, Evaluation]:
        """Run ``artifact`` on every case of ``pools`` in the executor, judge here, aggregate per pool."""
        cases = [c for p in pools for c in self.pools.get(p)]
        t0 = time.perf_counter()
        judged = await run_and_judge(self.executor, self.task, artifact, cases, self.limits)
        cost = time.perf_counter() - t0
        by_pool: dict[str, list[CaseResult]] = {p: [] for p in pools}
        for case, res in zip(cases, judged):
            by_pool[case.pool].append(res)
        result: dict[str, Evaluation] = {}
        for p, res in by_pool.items():
            if not res:
                continue
            try:
                ev = self.task.aggregate(artifact, p, res)
            except Exception as e:
                ev = Evaluation.invalid(f"aggregation failed: {type(e).__name__}: {e}", pool=p, error_kind="judge")
            ev.pool = p
            ev.cost_s = cost
            result[p] = ev
        return result

    def _search_pools(self) -> list[str]:
        return ["feedback", "selection"] if self.pools.selection else ["feedback"]

    async def _evaluate_and_store(self, cand: Candidate) -> None:
        assert cand.artifact is not None
        evs = await self.evaluate(cand.artifact, self._search_pools())
        for ev in evs.values():
            self.db.add_evaluation(cand.id, ev)
            cand.evals[ev.pool] = [ev]
        cand.status = "evaluated"
        self.db.set_status(cand.id, "evaluated")

    async def ensure_repeats(self, cand: Candidate, n: int) -> None:
        """Make sure ``cand`` has ``n`` selection evaluations (for noise estimates); reuse stored ones."""
        pool = "selection" if self.pools.selection else "feedback"
        have = len(cand.evals.get(pool, []))
        for r in range(have, n):
            ev = (await self.evaluate(cand.artifact, [pool]))[pool]  # type: ignore[arg-type]
            self.db.add_evaluation(cand.id, ev, repeat=r)
            cand.evals.setdefault(pool, []).append(ev)
        if self._best is cand:  # its mean may have dropped: recompute once
            valid = [c for c in self.candidates.values() if c.sel_score is not None]
            self._best = max(valid, key=_rank_key) if valid else None
        self._add(cand)

    async def _smoke(self, artifact: Artifact) -> list[str]:
        """Run the first feedback case in the sandbox; a crash there is a retryable invalid proposal."""
        cases = self.pools.feedback[:1]
        if not cases:
            return []
        out = (await self.executor.run(artifact, cases, self.limits))[0]
        res = self._judge(artifact, cases[0], out)  # a task may report a crash inside its output (e.g. a policy)
        if res.ok:
            return []
        return [f"crash in the smoke test ({res.error_kind}): " + "\n".join(res.diagnostics)[:2000]]

    # ---- proposals ----------------------------------------------------
    async def seed_candidate(self) -> Candidate | None:
        """Generation 0 from the task's seed artifact (evaluated, no LLM call); None if the task has none."""
        seed = self.task.seed()
        if seed is None:
            return None
        row = self.db.candidate_at(0, 0)
        if row is not None:
            cand = self._load(row)
        else:
            path = self._write_artifact(0, 0, seed)
            cid = self.db.add_candidate(generation=0, slot=0, parent_id=None, status="proposed", sha=seed.sha,
                                        language=seed.language, content=seed.content, path=path, attempts=0,
                                        origin="seed")
            cand = Candidate(cid, 0, 0, None, seed, "proposed", origin="seed")
        if cand.status == "proposed":
            await self._evaluate_and_store(cand)
        self._add(cand)
        self._progress(cand)
        return cand

    async def ask(self, gen: int, slot: int, attempt: int, messages: list[dict[str, str]],
                  parent: Artifact | None = None) -> LLMResponse:
        """One recorded, budgeted synthesizer call at address (gen, slot, attempt), for task-owned loops.

        Reuses the stored answer when the same address and request were answered before a crash.
        Raises BudgetExhausted before calling, LLMError when the call fails after retries.
        """
        return await self._ask(gen, slot, attempt, self._request(messages), parent)

    def record(self, gen: int, slot: int, parent: Candidate | None, artifact: Artifact | None,
               evals: dict[str, Evaluation], status: str = "evaluated", note: str = "",
               attempts: int = 1) -> Candidate:
        """Store a candidate with its evaluations (one transaction); used by ``propose`` and task-owned loops."""
        with self.db.transaction():
            return self._record(gen, slot, parent, artifact, evals, status, note, attempts)

    def _record(self, gen: int, slot: int, parent: Candidate | None, artifact: Artifact | None,
                evals: dict[str, Evaluation], status: str, note: str, attempts: int) -> Candidate:
        cand = self._insert(gen, slot, parent, artifact, status, note, attempts)
        self._attach(cand, evals)
        return cand

    def _insert(self, gen: int, slot: int, parent: Candidate | None, artifact: Artifact | None, status: str,
                note: str, attempts: int) -> Candidate:
        """Store the candidate's row and artifact file (not yet among ``candidates``: see :meth:`_attach`)."""
        path = self._write_artifact(gen, slot, artifact) if artifact else None
        cid = self.db.add_candidate(generation=gen, slot=slot, parent_id=parent.id if parent else None, status=status,
                                    sha=artifact.sha if artifact else None, language=self.task.language,
                                    content=artifact.content if artifact else None, path=path, attempts=attempts,
                                    note=note or None)
        return Candidate(cid, gen, slot, parent.id if parent else None, artifact, status, note=note)

    def _attach(self, cand: Candidate, evals: dict[str, Evaluation]) -> None:
        """Store ``evals`` of a stored candidate, then count it in (best so far, progress)."""
        for ev in evals.values():
            self.db.add_evaluation(cand.id, ev)
            cand.evals[ev.pool] = [ev]
        self._add(cand)
        self._progress(cand)

    def recorded(self, gen: int, slot: int) -> Candidate | None:
        """The candidate stored at (gen, slot), if a previous session completed it (for resume)."""
        row = self.db.candidate_at(gen, slot)
        if row is None:
            return None
        cand = self._load(row)
        self._add(cand)
        return cand

    async def _ask(self, gen: int, slot: int, attempt: int, req: LLMRequest, parent: Artifact | None) -> LLMResponse:
        h = req.hash()
        row = self.db.conn.execute(
            "SELECT * FROM llm_calls WHERE generation=? AND slot=? AND attempt=? AND request_hash=? AND error IS NULL"
            " AND response_text IS NOT NULL ORDER BY id DESC LIMIT 1", (gen, slot, attempt, h)).fetchone()
        if row is not None:  # answered before a crash: reuse, already charged
            return LLMResponse(text=row["response_text"], model=row["model"] or "", provider=row["provider"] or "",
                               kind=row["kind"] or "llm", reasoning=row["reasoning_text"] or "",
                               usage=Usage(**json.loads(row["usage"] or "{}")), request_hash=h)
        self.budget.check()
        try:
            resp = await self.synth.complete(req, parent)
        except LLMError as e:
            self.budget.charge(0.0, 0, 0)
            self.db.add_llm_call(generation=gen, slot=slot, attempt=attempt, request_hash=h, request=req.to_dict(),
                                 response=None, error=str(e))
            cause = unusable_endpoint(e.kind, e.message, self._endpoint()) if self.fail_fast else None
            if cause and not self._answered:
                raise SynthesizerUnusable(cause) from None
            raise
        self._answered = True
        resp.request_hash = h
        self.budget.charge(resp.cost_usd, resp.usage.input_tokens, resp.usage.output_tokens)
        self.db.add_llm_call(generation=gen, slot=slot, attempt=attempt, request_hash=h, request=req.to_dict(),
                             response=resp, error=None)
        return resp

    def _endpoint(self) -> str:
        """Where the synthesizer sends its calls, for messages: its base URL, else its provider's API."""
        desc = self.synth.describe()
        return str(desc.get("base_url") or f"the {desc.get('provider') or self.synth.name} API")

    def _request(self, messages: list[dict[str, str]]) -> LLMRequest:
        c = self.cfg.llm
        return LLMRequest(messages=messages, temperature=c.temperature, max_tokens=c.max_tokens, seed=c.seed,
                          reasoning_effort=c.reasoning_effort, thinking_budget=c.thinking_budget, timeout_s=c.timeout_s)

    async def propose(
        self, gen: int, slot: int, parent: Candidate | None, history: list[Candidate], instruction: str
    ) -> Candidate:
        """One child of ``parent`` at address (gen, slot). Raises BudgetExhausted only before any LLM call."""
        row = self.db.candidate_at(gen, slot)
        if row is not None:
            cand = self._load(row)
            if cand.status == "proposed":
                await self._evaluate_and_store(cand)
            self._add(cand)
            self._progress(cand)
            return cand
        built = self.build_messages(
            self.task, self.cfg.feedback, self.cfg.search.diffs, parent.prompt_item() if parent else None,
            [h.prompt_item() for h in history], instruction,
        )
        messages: Messages = await built if inspect.isawaitable(built) else built
        parent_art = parent.artifact if parent else None
        language = self.task.language

        async def check(code: str) -> tuple[str, Any]:
            problems = self.task.validate(Artifact(code, language))
            if not problems and self.cfg.search.smoke_test:
                problems = await self._smoke(Artifact(code, language))
            return "; ".join(problems), None

        async with self.sem:
            answer = await self.ask_for_code(gen, slot, messages, check, parent=parent_art)
        art = Artifact(answer.code, language) if answer.code is not None else None
        if answer.status != "ok" or art is None:  # invalid or failed: recorded as such, nothing to evaluate
            return self.record(gen, slot, parent, art, {}, answer.status, answer.error, answer.attempts)
        # The jobs go to the sandbox first; the candidate's row and artifact file are written while they run,
        # off the critical path. A crash before the evaluations land leaves a "proposed" row, which resume
        # evaluates (the LLM answer is already journaled): only the evaluation in flight is lost.
        evaluating = asyncio.ensure_future(self.evaluate(art, self._search_pools()))
        try:
            await asyncio.sleep(0)  # the evaluation's first step hands its jobs to idle sandboxes
            cand = self._insert(gen, slot, parent, art, "proposed", answer.error, answer.attempts)
            evs = await evaluating
        except BaseException:
            evaluating.cancel()
            raise
        with self.db.transaction():  # the evaluations, the status and the progress meta land together
            if evs:
                cand.status = "evaluated"
                self.db.set_status(cand.id, "evaluated")
            self._attach(cand, evs)
        return cand

    async def ask_for_code(self, gen: int, slot: int, messages: Messages, check: CodeCheck, *,
                           parent: Artifact | None = None,
                           retry: Callable[[str, str | None, str], str] = retry_message) -> CodeAnswer:
        """Ask at (gen, slot) until ``check`` accepts the answer's code, with up to ``search.retries`` retries.

        Each retry shows the model its previous answer, the failing code and the error (``retry`` renders
        it). An answer without extractable code counts as a failed attempt. Raises BudgetExhausted only
        before the first call; a call that fails after the provider's own retries ends with ``"failed"``.
        """
        language = self.task.language
        parent_code = parent.content if parent else None
        code: str | None = None
        error, checked = "", None
        for attempt in range(self.cfg.search.retries + 1):
            try:
                resp = await self._ask(gen, slot, attempt, self._request(messages), parent)
            except BudgetExhausted:
                if attempt == 0:
                    raise
                return CodeAnswer("invalid", code, "budget spent during retries", attempt + 1, checked)
            except LLMError as e:
                return CodeAnswer("failed", code, f"synthesizer call failed: {e}", attempt + 1, checked)
            checked = None
            try:
                code = extract_code(resp.text, parent_code, language)
            except ExtractionError as e:
                code, error = None, str(e)
            else:
                error, checked = await check(code)
                if not error:
                    return CodeAnswer("ok", code, "", attempt + 1, checked)
            messages = [*messages, {"role": "assistant", "content": resp.text},
                        {"role": "user", "content": retry(error, code, language)}]
        return CodeAnswer("invalid", code, error, self.cfg.search.retries + 1, checked)

    # ---- held-out gate ------------------------------------------------
    async def gate(self, finalists: list[tuple[str, Candidate]]) -> dict[str, Any]:
        """Score each finalist once on the held-out pool; store in-distribution vs held-out side by side."""
        if not self.pools.heldout:
            verdict: dict[str, Any] = {"status": "no held-out cases", "rows": []}
            self.db.set_meta("gate", verdict)
            return verdict
        rows = []
        seen: set[int] = set()
        for role, cand in finalists:
            if cand.id in seen or cand.artifact is None:
                continue
            seen.add(cand.id)
            stored = self.db.evaluations(cand.id, "heldout")
            ev = stored[0] if stored else (await self.evaluate(cand.artifact, ["heldout"]))["heldout"]
            if not stored:
                self.db.add_evaluation(cand.id, ev)
            cand.evals["heldout"] = [ev]
            rows.append(self.gate_row(role, cand, ev, None if ev.valid else ev.error_kind))
        return self.finish_gate(rows)

    def gate_row(self, role: str, cand: Candidate, ev: Evaluation | None, error: str | None) -> dict[str, Any]:
        """In-distribution vs held-out for one finalist; flagged when held-out failed or dropped past max_drop."""
        ind = cand.sel_score
        held = ev.score if ev is not None and ev.valid else None
        drop = None
        if ind is not None and held is not None:
            drop = (ind - held) / abs(ind) if ind != 0 else (0.0 if held >= ind else math.inf)
        return {"role": role, "candidate": cand.id, "generation": cand.generation, "in_distribution": ind,
                "heldout": held, "relative_drop": drop,
                "flagged": held is None or (drop is not None and drop > self.cfg.gate.max_drop),
                "heldout_error": error}

    def finish_gate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Store and return the gate verdict over its rows (also used by task-owned gates)."""
        verdict = {"status": "flagged" if any(r["flagged"] for r in rows) else "passed", "rows": rows,
                   "max_drop": self.cfg.gate.max_drop}
        self.db.set_meta("gate", verdict)
        self.db.event("gate", status=verdict["status"])
        return verdict
