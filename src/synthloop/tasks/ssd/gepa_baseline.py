"""GEPA baseline for SSD policy synthesis (spec §5.3): prompt-only optimisation of the system prompt.

The reference optimised the game's system prompt with ``gepa`` through a
vendored ``verifiers`` wrapper that crashed as released (spec §8.2 #15-16).
This re-implementation drives ``gepa.optimize`` directly, with its own
adapter, and keeps everything else identical to a synthesis run:

* **Candidate.** One text component, ``system_prompt``. The seed is exactly the
  system message of the synthesis loop's first generation (the brief generated
  from the live config plus the answer format); the user message is the loop's
  zero-shot instruction, fixed.
* **Evaluating a prompt on a batch of seeds.** The same synthesizer model writes
  a policy under that system prompt (re-asked up to ``search.retries`` times
  with the failing code and the error when the answer has no usable policy, as
  in the loop), then the policy plays one episode per seed in the real
  sandboxed executor and the trusted judge scores each episode (mean
  per-agent return). A prompt's policy is generated once and reused, and an
  episode of a (prompt, seed) pair is played once: a repeat costs nothing.
* **Pools.** GEPA's trainset is the feedback pool (its minibatches feed the
  reflection), its valset is the selection pool (Pareto tracking and the choice
  of the best prompt, never shown to the reflection LM). Held-out seeds never
  reach GEPA: the best prompt's policy is scored on them once, at the end, by
  the same gate as a synthesis run.
* **Failures score, never crash.** A policy that cannot be extracted or
  validated, or that crashes in an episode, scores ``failure_score`` (0 by
  default, as the reference) on each seed, and its traceback goes to the
  reflection LM. An LLM call that still fails after the provider's retries is
  recorded and skips the iteration; a run of such iterations stops the search
  (never an endless loop), and the result is still written.
* **Budget.** ``budget`` is counted in evaluations: one evaluation is what one
  candidate of a synthesis run costs, a policy on every feedback and selection
  seed, so ``--budget K+1`` matches ``synthloop run --iterations K``. GEPA's
  metric calls are (prompt, seed) scores; the run's limit is ``budget ×
  (|feedback| + |selection|)`` of them, counting only fresh pairs. An iteration
  starts only if its worst case (parent minibatch, child minibatch, child
  valset) fits in what is left, so the limit is never exceeded. Completing the
  best prompt's feedback pool for the report and the held-out gate are counted
  separately. LLM cost, calls and wall time limits of ``budget`` apply as in
  any run.
* **Records.** The run directory is a normal run (``config.yaml`` marked
  ``method: gepa``, ``run.sqlite`` with every LLM call, candidate and
  evaluation, the gate verdict, ``report.json``), so ``synthloop show``,
  ``report`` and ``table`` read it; ``gepa_result.json`` holds the prompts,
  per-iteration scores, in-distribution vs held-out and token/cost totals;
  ``gepa_iterations.jsonl`` journals each iteration as it ends; ``gepa/`` holds
  GEPA's own state and log.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from synthloop.config import ConfigError, RunConfig, load_yaml
from synthloop.core.types import Artifact, Case, CaseResult, Evaluation
from synthloop.feedback.prompt import proposal_messages, retry_message
from synthloop.feedback.spec import render_evaluation
from synthloop.llm.base import LLMError, LLMResponse
from synthloop.llm.extract import ExtractionError, extract_code
from synthloop.loop.budget import BudgetExhausted
from synthloop.loop.engine import Candidate, Engine, run_and_judge
from synthloop.loop.strategies import FROM_SCRATCH

COMPONENT = "system_prompt"
METHOD = "gepa"
#: the oldest ``gepa`` this adapter was written and tested against (API: callbacks, EvaluationBatch.num_metric_calls)
GEPA_MIN_VERSION = (0, 1, 4)
INSTALL_HINT = 'the GEPA baseline needs the `gepa` package (>= 0.1.4): pip install -e ".[gepa]"'
RESULT_FILE = "gepa_result.json"
JOURNAL_FILE = "gepa_iterations.jsonl"
SELECTORS = ("pareto", "current_best", "epsilon_greedy", "top_k_pareto")
COMPARE_METRICS = ("reward", "efficiency", "equality", "sustainability", "peace")


class GEPAMissing(ConfigError):
    """``gepa`` is not installed (or too old); one line with the install command."""


class GEPASettings(BaseModel):
    """The GEPA side of a baseline run (the rest is an ordinary :class:`RunConfig`)."""

    model_config = ConfigDict(extra="forbid")

    budget: int = Field(default=4, ge=1, description="evaluations: one = a policy on every feedback and selection "
                        "seed (what one synthesis candidate costs; `run --iterations K` spends K+1)")
    minibatch: int | None = Field(default=None, ge=1, description="feedback seeds per reflection minibatch "
                                  "(default: all of them, as the synthesis loop's feedback)")
    candidate_selection: Literal["pareto", "current_best", "epsilon_greedy", "top_k_pareto"] = "pareto"
    failure_score: float = Field(default=0.0, description="score of a seed whose policy failed (reference: 0)")
    seed: int = Field(default=0, description="GEPA's random seed (parent and minibatch sampling)")
    max_stalled_iterations: int = Field(default=3, ge=1, description="stop after this many iterations in a row "
                                        "that spent no metric call (failed LLM calls, repeated prompts)")


def require_gepa() -> str:
    """Import ``gepa`` and return its version; :class:`GEPAMissing` if it is absent or too old."""
    try:
        importlib.import_module("gepa")
    except ImportError:
        raise GEPAMissing(INSTALL_HINT) from None
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("gepa")
    except PackageNotFoundError:  # importable but not installed as a distribution (a checkout): trust it
        return "unknown"
    parts = tuple(int(p) for p in (v.split(".") + ["0", "0"])[:3] if p.isdigit())
    if len(parts) == 3 and parts < GEPA_MIN_VERSION:
        raise GEPAMissing(f"gepa {v} is too old; {INSTALL_HINT}")
    return v


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_gepa_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a GEPA baseline run (its config.yaml says ``method: gepa``)."""
    p = Path(run_dir) / "config.yaml"
    if not p.is_file():
        return False
    data = yaml.safe_load(p.read_text()) or {}
    return isinstance(data, dict) and data.get("method") == METHOD


# ----------------------------------------------------------------------------- preparation
def prepare_gepa(cfg: RunConfig, settings: GEPASettings) -> Path:
    """Validate everything and create the run directory (config.yaml, empty database).

    Raises ConfigError / ValueError / KeyError with one-line messages on bad input, before any work.
    """
    from synthloop.llm.factory import parse_model
    from synthloop.runner import new_run_id
    from synthloop.store.db import RunDB
    from synthloop.tasks.registry import make_task

    require_gepa()
    if not cfg.task.startswith("ssd/"):
        raise ConfigError(f"the GEPA baseline is for ssd/gathering and ssd/cleanup, not {cfg.task!r}")
    task = make_task(cfg.task, cfg.task_options)
    pools = task.pools()
    if not pools.feedback or not pools.selection:
        raise ConfigError("the GEPA baseline needs feedback seeds (its trainset) and selection seeds (its valset)")
    if settings.minibatch is not None and settings.minibatch > len(pools.feedback):
        raise ConfigError(f"--minibatch {settings.minibatch} is larger than the feedback pool "
                          f"({len(pools.feedback)} seeds); valid: 1..{len(pools.feedback)}")
    if cfg.feedback.mode not in ("sparse", "dense"):
        raise ConfigError(f"feedback mode {cfg.feedback.mode!r} is not available for GEPA; valid: sparse, dense")
    if not cfg.llm.model:
        raise ConfigError("the GEPA baseline needs a model (--model openai/<m>, anthropic/<m>, ollama/<m> or "
                          "replay:<run-dir>)")
    provider, _ = parse_model(cfg.llm.model)
    if provider == "mutate":
        raise ConfigError("mutate is not a language model: GEPA needs one to write policies and to reflect; valid: "
                          "openai/<m>, anthropic/<m>, ollama/<m>, replay:<run-dir>")
    from synthloop.llm.factory import missing_key

    needs = missing_key(cfg.llm.model, cfg.llm.base_url)  # OPENAI_BASE_URL / ANTHROPIC_BASE_URL count too
    if needs:
        raise ConfigError(needs)
    if provider == "replay" and not (Path(cfg.llm.model[7:]) / "run.sqlite").is_file():
        raise ConfigError(f"replay run {cfg.llm.model[7:]!r} has no run.sqlite; replay needs a recorded run directory")
    run_dir = Path(cfg.out) if cfg.out else Path("runs") / f"{new_run_id(cfg.task)}-gepa"
    if (run_dir / "run.sqlite").exists():
        raise ConfigError(f"run directory {str(run_dir)!r} already holds a run; choose another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    data = cfg.model_dump(mode="json")
    data["out"] = str(run_dir)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(
        {"config": data, "config_hash": cfg.digest(), "method": METHOD, "gepa": settings.model_dump(mode="json")},
        sort_keys=False))
    db = RunDB(run_dir / "run.sqlite")
    db.set_meta("config_hash", cfg.digest())
    db.set_meta("created_at", time.time())
    db.set_meta("method", METHOD)
    db.event("created", model=cfg.llm.model, method=METHOD)
    db.close()
    return run_dir


def load_gepa_config(run_dir: Path) -> tuple[RunConfig, GEPASettings]:
    from synthloop.config import build_config

    data = load_yaml(run_dir / "config.yaml")
    if data.get("method") != METHOD:
        raise ConfigError(f"{str(run_dir)!r} is not a GEPA baseline run")
    return build_config(data["config"]), GEPASettings.model_validate(data.get("gepa") or {})


# ----------------------------------------------------------------------------- the adapter
@dataclass
class PromptPolicy:
    """What the model wrote for one system prompt (generated once per prompt)."""

    key: str
    prompt: str
    iteration: int
    code: str | None = None
    completion: str = ""
    error: str = ""
    rejected_answers: list[str] = field(default_factory=list)
    attempts: int = 0
    cand: Candidate | None = None
    prompt_path: str = ""

    @property
    def usable(self) -> bool:
        return self.code is not None and not self.error


class _FileLogger:
    """GEPA's log lines go to a file only (its own Logger tees stdout, which would pollute ``--json``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def log(self, message: str, *args: Any, **kwargs: Any) -> None:
        with self.path.open("a") as fh:
            fh.write(" ".join(str(x) for x in (message, *args)) + "\n")


class _Skip(Exception):
    """An iteration that cannot go on (LLM failure, budget): GEPA logs it and the stopper decides."""


class GEPABaseline:
    """Adapter (``evaluate`` / ``make_reflective_dataset``), reflection LM, stopper and callbacks for one run.

    Everything runs on the calling thread: GEPA is synchronous and calls back into this object; the engine's
    async primitives (recorded LLM calls, the sandboxed executor) run on a private event loop.
    """

    propose_new_texts = None  # GEPA's default reflective proposer, driven by our reflection LM

    def __init__(self, engine: Engine, settings: GEPASettings, loop: asyncio.AbstractEventLoop,
                 run_dir: Path, progress: Callable[[str], None] | None = None) -> None:
        self.engine = engine
        self.task = engine.task
        self.settings = settings
        self.loop = loop
        self.run_dir = run_dir
        self.progress = progress or (lambda line: None)
        self.train: list[Case] = list(engine.pools.feedback)
        self.val: list[Case] = list(engine.pools.selection)
        self.heldout: list[Case] = list(engine.pools.heldout)
        self.minibatch = settings.minibatch or len(self.train)
        self.per_evaluation = len(self.train) + len(self.val)
        self.budget = settings.budget * self.per_evaluation
        self.metric_calls = 0  # fresh (prompt, seed) scores during the search
        self.episodes = 0  # episodes actually played during the search
        self.report_episodes = 0  # after the search: completing the best prompt's feedback pool
        self.gate_episodes = 0
        self.policies: dict[str, PromptPolicy] = {}
        self.results: dict[tuple[str, str], CaseResult] = {}
        self.gepa_index: dict[str, int] = {}  # prompt key -> GEPA candidate index (pool members)
        self.valset_scores: dict[int, float] = {}
        self.parents: dict[int, list[int]] = {0: []}
        self.iteration = 0
        self.stop_reason: str | None = None
        self.normal_stop = False
        self.stalled = 0  # iterations in a row without a fresh metric call
        self.errors: list[dict[str, Any]] = []
        self.iterations: list[dict[str, Any]] = []
        self._cur: dict[str, Any] | None = None
        self._parent_key: str | None = None
        self._slot = 0
        self._metric_calls_at_start = 0
        self._calls = {0: 0, 1: 0}
        self.usage = {k: {"calls": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
                      for k in ("policy", "reflection")}
        first = proposal_messages(self.task, engine.cfg.feedback, False, None, [], FROM_SCRATCH)
        self.seed_prompt: str = first[0]["content"]
        self.user_message: str = first[1]["content"]
        self.journal = run_dir / JOURNAL_FILE

    # ---- LLM ----------------------------------------------------------------
    def _ask(self, slot: int, messages: list[dict[str, str]]) -> LLMResponse:
        kind = "policy" if slot == 0 else "reflection"
        n = self._calls[slot]
        self._calls[slot] += 1
        u = self.usage[kind]
        try:
            resp = self.loop.run_until_complete(self.engine.ask(self.iteration, slot, n, messages))
        except BudgetExhausted as e:
            self.stop_reason = self.stop_reason or e.reason
            raise _Skip(f"budget: {e.reason}") from None
        except LLMError as e:  # the provider already retried transient faults (llm.max_attempts)
            u["calls"] += 1
            u["errors"] += 1
            self._error(f"{kind} call failed: {e}")
            raise _Skip(f"{kind} call failed: {e}") from None
        u["calls"] += 1
        u["input_tokens"] += resp.usage.input_tokens
        u["output_tokens"] += resp.usage.output_tokens
        u["cost_usd"] += resp.cost_usd
        return resp

    def _error(self, message: str) -> None:
        self.errors.append({"iteration": self.iteration, "error": message[:4000]})
        self.engine.db.event("gepa_error", iteration=self.iteration, error=message[:2000])
        if self._cur is not None:
            self._cur.setdefault("errors", []).append(message[:500])

    # reflection LM interface (gepa.proposer.reflective_mutation.base.LanguageModel), with GEPA's cost attributes
    def __call__(self, prompt: str | list[dict[str, Any]]) -> str:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [
            {"role": str(m.get("role", "user")), "content": str(m.get("content", ""))} for m in prompt]
        return self._ask(1, messages).text

    @property
    def total_cost(self) -> float:
        return float(self.usage["reflection"]["cost_usd"])

    @property
    def total_tokens_in(self) -> int:
        return int(self.usage["reflection"]["input_tokens"])

    @property
    def total_tokens_out(self) -> int:
        return int(self.usage["reflection"]["output_tokens"])

    # ---- policies -----------------------------------------------------------
    def policy_for(self, prompt: str) -> PromptPolicy:
        """The policy the model writes under ``prompt`` (once per prompt; an LLM failure is not remembered)."""
        key = _sha(prompt)
        if key in self.policies:
            return self.policies[key]
        pol = PromptPolicy(key, prompt, self.iteration)
        messages = [{"role": "system", "content": prompt}, {"role": "user", "content": self.user_message}]
        for _ in range(self.engine.cfg.search.retries + 1):
            pol.attempts += 1
            resp = self._ask(0, messages)
            pol.completion = resp.text
            try:
                code = extract_code(resp.text, None, self.task.language)
            except ExtractionError as e:
                pol.code, pol.error = None, str(e)
            else:
                problems = self.task.validate(Artifact(code, self.task.language))
                pol.code, pol.error = code, "; ".join(problems)
                if not problems:
                    break
            pol.rejected_answers.append(pol.error)
            messages = [*messages, {"role": "assistant", "content": resp.text},
                        {"role": "user", "content": retry_message(pol.error, pol.code, self.task.language)}]
        self.policies[key] = pol
        self._record(pol)
        return pol

    def _record(self, pol: PromptPolicy) -> None:
        parent = self.policies.get(self._parent_key) if self._parent_key and pol.iteration > 0 else None
        gen, slot = pol.iteration, self._slot
        self._slot += 1
        rel = f"artifacts/g{gen:04d}_s{slot:02d}_prompt.txt"
        (self.run_dir / rel).write_text(pol.prompt)
        pol.prompt_path = rel
        art = Artifact(pol.code, self.task.language) if pol.code is not None else None
        note = f"GEPA system prompt: {rel}" + ("" if pol.usable else f"; no usable policy: {pol.error}")
        pol.cand = self.engine.record(gen, slot, parent.cand if parent else None, art, {},
                                      status="proposed" if pol.usable else "invalid", note=note, attempts=pol.attempts)

    def _run_cases(self, pol: PromptPolicy, cases: list[Case]) -> list[CaseResult]:
        if not pol.usable:
            why = f"the answer held no usable policy: {pol.error}"
            return [CaseResult(c.id, ok=False, diagnostics=[why], error_kind="invalid_answer") for c in cases]
        art = Artifact(pol.code or "", self.task.language)
        return self.loop.run_until_complete(
            run_and_judge(self.engine.executor, self.task, art, cases, self.engine.limits))

    def _score(self, r: CaseResult) -> float:
        return float(r.score) if r.ok and r.score is not None else float(self.settings.failure_score)

    def _pool_eval(self, pol: PromptPolicy, pool: str) -> Evaluation | None:
        cases = {"feedback": self.train, "selection": self.val, "heldout": self.heldout}[pool]
        res = [self.results[(pol.key, c.id)] for c in cases if (pol.key, c.id) in self.results]
        if not res:
            return None
        if not pol.usable:
            return Evaluation.invalid(f"no usable policy: {pol.error}", pool=pool, error_kind="invalid_answer",
                                      cases=res)
        art = Artifact(pol.code or "", self.task.language)
        try:
            ev = self.task.aggregate(art, pool, res)
        except Exception as e:  # noqa: BLE001 - a judge fault is scored, never fatal
            ev = Evaluation.invalid(f"aggregation failed: {type(e).__name__}: {e}", pool=pool, error_kind="judge")
        ev.pool = pool
        return ev

    def _sync_db(self, pol: PromptPolicy) -> None:
        """Store the prompt's per-pool evaluations so far (replacing the previous rows)."""
        if pol.cand is None or not pol.usable:
            return
        with self.engine.db.transaction():
            for pool in ("feedback", "selection", "heldout"):
                ev = self._pool_eval(pol, pool)
                if ev is not None:
                    self.engine.db.add_evaluation(pol.cand.id, ev)
                    pol.cand.evals[pool] = [ev]
            if pol.cand.status != "evaluated":
                pol.cand.status = "evaluated"
                self.engine.db.set_status(pol.cand.id, "evaluated")

    def play(self, pol: PromptPolicy, cases: list[Case], ledger: str) -> None:
        """Score every (prompt, case) pair not scored yet; ``ledger`` says which counter pays."""
        seen: set[str] = set()
        todo = []
        for c in cases:
            if (pol.key, c.id) not in self.results and c.id not in seen:
                seen.add(c.id)
                todo.append(c)
        if not todo:
            return
        if ledger == "search" and self.metric_calls + len(todo) > self.budget:  # the stopper makes this unreachable
            self.stop_reason = self.stop_reason or "evaluation budget spent"
            raise _Skip(f"evaluation budget: {len(todo)} more metric calls would exceed {self.budget}")
        for c, r in zip(todo, self._run_cases(pol, todo)):
            self.results[(pol.key, c.id)] = r
        played = len(todo) if pol.usable else 0
        if ledger == "search":
            self.metric_calls += len(todo)
            self.episodes += played
        elif ledger == "report":
            self.report_episodes += played
        else:
            self.gate_episodes += played
        self._sync_db(pol)

    # ---- GEPAAdapter ----------------------------------------------------------
    def evaluate(self, batch: list[Case], candidate: dict[str, str], capture_traces: bool = False) -> Any:
        from gepa import EvaluationBatch

        if any(c.pool not in ("feedback", "selection") for c in batch):
            raise RuntimeError("only feedback and selection seeds may reach GEPA")
        pol = self.policy_for(candidate[COMPONENT])
        before = self.metric_calls
        self.play(pol, batch, "search")
        res = [self.results[(pol.key, c.id)] for c in batch]
        outputs = [{"case": c.id, "ok": r.ok, "score": r.score, "error_kind": r.error_kind} for c, r in zip(batch, res)]
        trajectories = [{"key": pol.key, "case": c.id} for c in batch] if capture_traces else None
        return EvaluationBatch(outputs=outputs, scores=[self._score(r) for r in res], trajectories=trajectories,
                               num_metric_calls=self.metric_calls - before)

    def make_reflective_dataset(self, candidate: dict[str, str], eval_batch: Any,
                                components_to_update: list[str]) -> Mapping[str, Sequence[Mapping[str, Any]]]:
        """One record per minibatch: the task, the model's full answer, and its feedback-pool evaluation on
        the minibatch's seeds rendered exactly as the synthesis loop renders feedback (FeedbackSpec)."""
        trajs = eval_batch.trajectories or []
        if not trajs:
            return {}
        pol = self.policies[trajs[0]["key"]]
        ids = list(dict.fromkeys(t["case"] for t in trajs))
        res = [self.results[(pol.key, cid)] for cid in ids]
        if pol.usable:
            ev = self.task.aggregate(Artifact(pol.code or "", self.task.language), "feedback", res)
        else:
            ev = Evaluation.invalid(f"the answer held no usable policy: {pol.error}", error_kind="invalid_answer")
        text = render_evaluation(ev, self.engine.cfg.feedback, self.task.metrics, self.task.objective)
        if len(pol.rejected_answers) > (0 if pol.usable else 1):
            text += "\n(earlier answers to this prompt were rejected: " + "; ".join(
                pol.rejected_answers[: len(pol.rejected_answers) - (0 if pol.usable else 1)])[:1500] + ")"
        record = {"Inputs": self.user_message, "Generated Outputs": pol.completion, "Feedback": text}
        return {name: [record] for name in components_to_update if name == COMPONENT}

    # ---- stopper ----------------------------------------------------------------
    def should_stop(self, state: Any) -> bool:
        if self.stop_reason:
            return True
        try:
            self.engine.budget.check()
        except BudgetExhausted as e:
            self.stop_reason = e.reason
            return True
        if self.stalled >= self.settings.max_stalled_iterations:
            self.stop_reason = (f"{self.stalled} iterations in a row made no progress (failed LLM calls"
                                " or repeated prompts; see errors)")
            return True
        left = self.budget - self.metric_calls
        parent = 0
        for cand in state.program_candidates:
            key = _sha(cand[COMPONENT])
            parent = max(parent, min(self.minibatch, sum((key, c.id) not in self.results for c in self.train)))
        worst = parent + self.minibatch + len(self.val)
        if left < worst:
            self.stop_reason = (f"evaluation budget: {left} of {self.budget} metric calls left, the next iteration "
                                f"may need {worst}")
            self.normal_stop = True
            return True
        return False

    # ---- callbacks (gepa.core.callbacks.GEPACallback) ------------------------------------
    def on_valset_evaluated(self, ev: Mapping[str, Any]) -> None:
        idx = int(ev["candidate_idx"])
        key = _sha(ev["candidate"][COMPONENT])
        self.gepa_index.setdefault(key, idx)
        self.valset_scores[idx] = float(ev["average_score"])
        self.parents[idx] = [int(p) for p in ev.get("parent_ids") or [] if p is not None]
        if idx == 0:
            self.iterations.append({"iteration": 0, "candidate": 0, "valset_score": float(ev["average_score"]),
                                    "best_valset_score": float(ev["average_score"]), "metric_calls": self.metric_calls})
            self._journal(self.iterations[-1])
            self.progress(f"seed prompt: selection score {float(ev['average_score']):.4g}; metric calls "
                          f"{self.metric_calls}/{self.budget}")
        elif self._cur is not None:
            self._cur["valset_score"] = float(ev["average_score"])

    def on_iteration_start(self, ev: Mapping[str, Any]) -> None:
        self.iteration = int(ev["iteration"])
        self._slot = 0
        self._metric_calls_at_start = self.metric_calls
        self._parent_key = None
        self._cur = {"iteration": self.iteration, "parent": None, "minibatch_seeds": [], "parent_scores": None,
                     "proposed": False, "child_scores": None, "accepted": False, "candidate": None,
                     "valset_score": None}

    def on_candidate_selected(self, ev: Mapping[str, Any]) -> None:
        self._parent_key = _sha(ev["candidate"][COMPONENT])
        if self._cur is not None:
            self._cur["parent"] = int(ev["candidate_idx"])

    def on_minibatch_sampled(self, ev: Mapping[str, Any]) -> None:
        if self._cur is not None:
            self._cur["minibatch_seeds"] = [int(self.train[i].params["seed"]) for i in ev["minibatch_ids"]]

    def on_evaluation_end(self, ev: Mapping[str, Any]) -> None:
        if self._cur is not None:
            self._cur["parent_scores" if ev.get("candidate_idx") is not None else "child_scores"] = [
                float(s) for s in ev["scores"]]

    def on_proposal_end(self, ev: Mapping[str, Any]) -> None:
        text = (ev.get("new_instructions") or {}).get(COMPONENT)
        if self._cur is not None and text is not None:
            self._cur["proposed"] = True
            self._cur["child_prompt"] = _sha(text)

    def on_candidate_accepted(self, ev: Mapping[str, Any]) -> None:
        if self._cur is not None:
            self._cur["accepted"] = True
            self._cur["candidate"] = int(ev["new_candidate_idx"])

    def on_candidate_rejected(self, ev: Mapping[str, Any]) -> None:
        if self._cur is not None:
            self._cur["rejected"] = str(ev.get("reason"))

    def on_error(self, ev: Mapping[str, Any]) -> None:
        exc = ev.get("exception")
        if isinstance(exc, _Skip):
            if self._cur is not None:
                self._cur.setdefault("errors", []).append(str(exc))
            return
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) if exc else "unknown error"
        self._error(f"iteration raised {type(exc).__name__}: {exc}\n{tb}")

    def on_iteration_end(self, ev: Mapping[str, Any]) -> None:
        cur = self._cur
        if cur is None:
            return
        self._cur = None
        cur["metric_calls"] = self.metric_calls
        cur["best_valset_score"] = max(self.valset_scores.values()) if self.valset_scores else None
        child = self.policies.get(cur.get("child_prompt") or "")
        if child is not None:
            cur["child_policy_valid"] = child.usable
            if child.cand is not None:
                cur["child_db_id"] = child.cand.id
        if cur["proposed"] and child is not None and not cur["accepted"] and child.key not in self.gepa_index:
            self._mark_rejected(child, cur.get("rejected") or "not accepted")
        # an iteration that failed, or spent no fresh metric call (a repeated prompt), makes no progress: a run
        # of them stops the search instead of looping forever on a broken model or a stuck reflection
        stalled = cur["metric_calls"] == self._metric_calls_at_start or (bool(cur.get("errors"))
                                                                    and cur.get("child_scores") is None)
        self.stalled = self.stalled + 1 if stalled else 0
        self.iterations.append(cur)
        self._journal(cur)
        ps, cs = cur.get("parent_scores"), cur.get("child_scores")
        line = f"iteration {cur['iteration']}: parent #{cur['parent']}"
        if ps is not None:
            line += f" minibatch {sum(ps):.4g}"
        line += (f" -> {sum(cs):.4g} {'accepted' if cur['accepted'] else 'rejected'}" if cs is not None
                 else ", no proposal" + (f" ({cur['errors'][-1][:120]})" if cur.get("errors") else ""))
        if cur["valset_score"] is not None:
            line += f", selection score {cur['valset_score']:.4g}"
        if cur["best_valset_score"] is not None:
            line += f"; best {cur['best_valset_score']:.4g}"
        self.progress(f"{line}; metric calls {self.metric_calls}/{self.budget}")

    def _mark_rejected(self, pol: PromptPolicy, reason: str) -> None:
        """A child GEPA discarded on its minibatch: kept in the database with its feedback evaluation, and an
        explicit 'never evaluated' selection row so no summary ranks it by feedback-pool scores."""
        if pol.cand is None or not pol.usable:
            return
        marker = Evaluation.invalid(f"rejected by GEPA on its feedback minibatch ({reason}); never evaluated on the "
                                    "selection pool", pool="selection", error_kind="not_selected")
        with self.engine.db.transaction():
            self.engine.db.add_evaluation(pol.cand.id, marker)
            self.engine.db.set_status(pol.cand.id, "rejected")
        pol.cand.evals["selection"] = [marker]
        pol.cand.status = "rejected"

    def _journal(self, entry: dict[str, Any]) -> None:
        with self.journal.open("a") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")


# ----------------------------------------------------------------------------- the run
def execute_gepa(run_dir: Path, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run GEPA in a prepared run directory, then the held-out gate; write the result JSON and the report."""
    from synthloop.execution import make_executor
    from synthloop.llm.factory import make_synthesizer
    from synthloop.report.summary import summarize, write_report
    from synthloop.store.db import RunDB
    from synthloop.tasks.registry import make_task

    cfg, settings = load_gepa_config(run_dir)
    version = require_gepa()
    task = make_task(cfg.task, cfg.task_options)
    # the zygote forks here, before any API key, database, thread or event loop exists in this process
    executor = make_executor(cfg.execution.executor, task, cfg.task, cfg.task_options, cfg.execution.workers,
                             cfg.execution.ray_address)
    executor.start()
    loop = asyncio.new_event_loop()
    db: RunDB | None = None
    synth = None
    try:
        synth = make_synthesizer(cfg.llm.model or "", base_url=cfg.llm.base_url, max_attempts=cfg.llm.max_attempts,
                                 backoff_base_s=cfg.llm.backoff_base_s, pricing_path=cfg.llm.pricing)
        db = RunDB(run_dir / "run.sqlite")
        db.event("start", pid=os.getpid(), method=METHOD, budget=settings.budget)
        db.set_meta("status", "running")
        db.set_meta("synthesizer", synth.describe())
        db.set_meta("task", task.describe())
        db.set_meta("gepa", {**settings.model_dump(mode="json"), "version": version})
        engine = Engine(cfg, task, synth, executor, db, run_dir)
        run = GEPABaseline(engine, settings, loop, run_dir, progress)
        result = _optimize_and_gate(run, cfg, settings, version)
        summary = summarize(run_dir, db)
        write_report(run_dir, summary)
        (run_dir / RESULT_FILE).write_text(json.dumps(result, indent=1, default=str))
        return result
    finally:
        if synth is not None:
            try:
                loop.run_until_complete(synth.aclose())
            except Exception:  # noqa: BLE001 - closing must not hide the result
                pass
        loop.close()
        executor.close()
        if db is not None:
            db.close()


def _optimize_and_gate(run: GEPABaseline, cfg: RunConfig, settings: GEPASettings, version: str) -> dict[str, Any]:
    import gepa

    engine, db = run.engine, run.engine.db
    gepa_dir = run.run_dir / "gepa"
    gepa_dir.mkdir(exist_ok=True)
    best_idx, gepa_counted, status = 0, None, "completed"
    candidates: list[dict[str, str]] = [{COMPONENT: run.seed_prompt}]
    try:
        result = gepa.optimize(
            seed_candidate={COMPONENT: run.seed_prompt}, trainset=run.train, valset=run.val, adapter=run,
            reflection_lm=run, candidate_selection_strategy=settings.candidate_selection,
            skip_perfect_score=False, reflection_minibatch_size=run.minibatch, stop_callbacks=[run.should_stop],
            logger=_FileLogger(gepa_dir / "run_log.txt"), run_dir=str(gepa_dir), callbacks=[run],
            track_best_outputs=False, display_progress_bar=False, seed=settings.seed, raise_on_exception=False,
            use_merge=False, cache_evaluation=False,
        )
        best_idx, candidates, gepa_counted = result.best_idx, list(result.candidates), result.total_metric_calls
    except _Skip as e:  # only the seed prompt's first evaluation gets here (GEPA survives the others)
        status = f"failed: {e}"
        run._error(f"the seed prompt could not be evaluated: {e}")
    except Exception as e:  # noqa: BLE001 - record, never lose the run directory
        status = f"failed: {type(e).__name__}: {e}"
        run._error(f"GEPA raised {type(e).__name__}: {e}\n{traceback.format_exc()}")
    best_prompt = candidates[best_idx][COMPONENT]
    pol = run.policies.get(_sha(best_prompt))
    gate: dict[str, Any] = {"status": "not run", "rows": []}
    if pol is not None and pol.cand is not None:
        db.set_meta("best", pol.cand.id)
        db.set_meta("final", pol.cand.id)
        try:
            if pol.usable:  # the report's in-distribution numbers cover the whole feedback pool (outside the budget)
                run.play(pol, run.train, "report")
                run.play(pol, run.val, "report")
            if not run.heldout:
                gate = {"status": "no held-out cases", "rows": []}
                db.set_meta("gate", gate)
            else:
                if pol.usable:
                    run.play(pol, run.heldout, "gate")
                ev = run._pool_eval(pol, "heldout")
                err = None if ev is not None and ev.valid else (ev.error_kind if ev else "no usable policy")
                gate = engine.finish_gate([engine.gate_row("best", pol.cand, ev, err)])
        except Exception as e:  # noqa: BLE001 - e.g. the sandbox died: recorded, the result is still written
            run._error(f"the held-out gate failed: {type(e).__name__}: {e}\n{traceback.format_exc()}")
            gate = {"status": f"failed: {type(e).__name__}: {e}", "rows": []}
            db.set_meta("gate", gate)
    if status == "completed" and run.stop_reason and not run.normal_stop:
        status = f"stopped: {run.stop_reason}"
        db.set_meta("stopped", run.stop_reason)
        db.event("budget_stop", reason=run.stop_reason)
    db.set_meta("status", status)
    db.set_meta("wall_s", engine.budget.wall_s)
    db.event("end", status=status)
    return _result(run, cfg, settings, version, status, best_idx, candidates, gepa_counted, gate)


def _artifact_path(db: Any, pol: PromptPolicy) -> str | None:
    if pol.cand is None:
        return None
    row = db.candidate_at(pol.cand.generation, pol.cand.slot)
    return row["path"] if row is not None else None


def _pool_summary(run: GEPABaseline, pol: PromptPolicy | None, pool: str) -> dict[str, Any] | None:
    if pol is None:
        return None
    cases = {"feedback": run.train, "selection": run.val, "heldout": run.heldout}[pool]
    ev = run._pool_eval(pol, pool)
    per_seed = {int(c.params["seed"]): run._score(run.results[(pol.key, c.id)]) for c in cases
                if (pol.key, c.id) in run.results}
    out: dict[str, Any] = {"seeds": per_seed, "valid": bool(ev and ev.valid), "complete": len(per_seed) == len(cases)}
    if ev is not None and ev.valid:
        out.update({k: ev.metrics.get(k) for k in COMPARE_METRICS})
        out["reward"] = ev.score
    elif ev is not None:
        out["error"] = "; ".join(ev.diagnostics)[:2000]
    return out


def _result(run: GEPABaseline, cfg: RunConfig, settings: GEPASettings, version: str, status: str, best_idx: int,
            candidates: list[dict[str, str]], gepa_counted: int | None, gate: dict[str, Any]) -> dict[str, Any]:
    db = run.engine.db
    best_prompt = candidates[best_idx][COMPONENT]
    best = run.policies.get(_sha(best_prompt))
    cand_rows = []
    for key, pol in run.policies.items():
        idx = run.gepa_index.get(key)
        cand_rows.append({
            "gepa_index": idx, "db_id": pol.cand.id if pol.cand else None, "iteration": pol.iteration,
            "parents": run.parents.get(idx, []) if idx is not None else None,
            "status": "pool" if idx is not None else "rejected", "prompt_sha": key, "prompt_file": pol.prompt_path,
            "policy_file": _artifact_path(db, pol),
            "policy_valid": pol.usable, "policy_error": pol.error or None, "answer_attempts": pol.attempts,
            "valset_score": run.valset_scores.get(idx) if idx is not None else None,
            "feedback": _pool_summary(run, pol, "feedback"), "selection": _pool_summary(run, pol, "selection"),
        })
    totals = db.llm_totals()
    in_fb = _pool_summary(run, best, "feedback")
    held = _pool_summary(run, best, "heldout")
    game = cfg.task.split("/", 1)[1]
    row = {"game": game, "method": f"GEPA {cfg.llm.model}", "feedback": cfg.feedback.mode, "role": "best",
           "protocol": "self-play", "n": 1,
           **{k: (in_fb or {}).get(k) for k in ("efficiency", "equality", "sustainability", "peace", "reward")},
           "heldout_reward": (held or {}).get("reward")}
    return {
        "method": METHOD, "gepa_version": version, "task": cfg.task, "game": game, "model": cfg.llm.model,
        "feedback": cfg.feedback.mode, "run_dir": str(run.run_dir), "status": status, "stop_reason": run.stop_reason,
        "settings": settings.model_dump(mode="json"),
        "pools": {"feedback": [int(c.params["seed"]) for c in run.train],
                  "selection": [int(c.params["seed"]) for c in run.val],
                  "heldout": [int(c.params["seed"]) for c in run.heldout]},
        "budget": {"evaluations": settings.budget, "seeds_per_evaluation": run.per_evaluation,
                   "metric_calls": run.budget, "metric_calls_used": run.metric_calls,
                   "episodes_played": run.episodes, "report_episodes": run.report_episodes,
                   "gate_episodes": run.gate_episodes, "gepa_counted_metric_calls": gepa_counted},
        "seed_prompt": run.seed_prompt, "user_message": run.user_message,
        "best": {"gepa_index": best_idx, "db_id": best.cand.id if best and best.cand else None,
                 "prompt": best_prompt, "prompt_changed": best_prompt != run.seed_prompt,
                 "policy_valid": bool(best and best.usable),
                 "valset_score": run.valset_scores.get(best_idx),
                 "in_distribution": {"feedback": in_fb, "selection": _pool_summary(run, best, "selection")},
                 "heldout": held},
        "gate": gate,
        "iterations": run.iterations,
        "candidates": cand_rows,
        "llm": {**totals, "policy": run.usage["policy"], "reflection": run.usage["reflection"]},
        "synthesizer": run.engine.synth.describe(),
        "errors": run.errors,
        "wall_s": run.engine.budget.wall_s,
        "comparison_row": row,
    }


def run_gepa(cfg: RunConfig, settings: GEPASettings, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Prepare and execute a GEPA baseline run; returns the result dict (also in ``<run>/gepa_result.json``)."""
    return execute_gepa(prepare_gepa(cfg, settings), progress)


def summary_line(result: dict[str, Any]) -> str:
    """One human line for the CLI."""
    from synthloop.report.labels import cost_text

    b, best = result["budget"], result["best"]
    fb = (best["in_distribution"] or {}).get("feedback") or {}
    held = best.get("heldout") or {}

    def f(x: Any) -> str:
        return "-" if x is None else f"{float(x):.4g}"

    return (f"GEPA {result['task']} {result['model']}: {result['status']}; best prompt #{best['gepa_index']} "
            f"({'changed' if best['prompt_changed'] else 'the seed prompt'}); feedback reward {f(fb.get('reward'))} "
            f"U {f(fb.get('efficiency'))}; selection {f(best.get('valset_score'))}; held-out reward "
            f"{f(held.get('reward'))}; metric calls {b['metric_calls_used']}/{b['metric_calls']}; LLM calls "
            f"{result['llm']['calls']} ({cost_text(result['llm']['cost_usd'], result.get('synthesizer'))}); gate "
            f"{result['gate']['status']}")

