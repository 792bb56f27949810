"""The harness: budget, frozen-hash checks, measurement, the keep rule and the final gate.

The researcher proposes; the harness disposes. Every score comes from
:meth:`Harness.experiment` (reached only through the HTTP service), which in
order: refuses when the budget is spent (429), refuses when any frozen source
file, the seed pools or the task options changed since the run started (409),
snapshots the workspace into a commit and validates the pipeline (422 on a
stray file, a changed program.md, a bad config or template), measures r
replicates on the selection pool, applies the keep rule, and either adopts
the commit or restores the incumbent exactly. Nothing per-seed, nothing from
the held-out pool and no replicate value is ever in a response.

Crash safety: a measurement's ledger row and its charge are one SQLite
transaction, written before the workspace moves, so a run killed at any
point (even SIGKILL) loses only the experiment in flight;
:meth:`Harness.resume_workspace` records that one as ``interrupted``
(charging whatever its inner runs had already spent), restores the
incumbent and the loop goes on. Wall time used is checkpointed in the ledger.

Keep rule (paired, noise-calibrated): replicate i of the candidate and of the
incumbent share LLM seed i; with paired differences d_i (sign-adjusted so
higher is better), keep iff every candidate replicate produced a valid policy
and mean(d) > margin, where margin = max(min_delta, t_{0.95,n-1} · s / √n) and
s = max(sd(d), √2 · sd(baseline replicates)). The baseline term is a noise
floor, so a lucky pair of identical-looking draws cannot pass by chance alone.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthloop.autoresearch.ledger import Ledger
from synthloop.autoresearch.measure import (
    InnerSetup,
    Measurement,
    Measurer,
    Stat,
    frozen_manifest,
    manifest_mismatch,
    t_quantile,
)
from synthloop.autoresearch.pipeline import (
    CONFIG_FILE,
    EDITABLE,
    FEEDBACK_FILE,
    HELPERS_FILE,
    PROMPT_FILE,
    FeedbackBuilderTask,
    Pipeline,
    PipelineError,
)
from synthloop.autoresearch.workspace import PROGRAM_FILE, Refused, Workspace
from synthloop.execution import make_executor


@dataclass(frozen=True)
class Budget:
    """Hard caps for the whole run; evaluations count the baseline. Tokens and dollars cover both roles."""

    evals: int = 30
    tokens: int | None = None
    usd: float | None = None
    wall_s: float | None = None


@dataclass(frozen=True)
class KeepRule:
    min_delta: float = 0.0
    confidence: float = 0.95


def program_text(objective: str, task_name: str, replicates: int, budget: Budget) -> str:
    """program.md: the objective and the rules, for any researcher (frozen in the workspace).

    It names no port: the service's URL can change when an interrupted run is resumed, the rules cannot."""
    caps = [f"{budget.evals} evaluations (the baseline is the first)"]
    if budget.tokens:
        caps.append(f"{budget.tokens} LLM tokens")
    if budget.usd:
        caps.append(f"${budget.usd:g}")
    if budget.wall_s:
        caps.append(f"{budget.wall_s:g} s wall time")
    return f"""# Autoresearch program

You are the researcher. A frozen synthesizer LLM writes artifacts for the task `{task_name}` in an inner
loop driven by the pipeline in this directory. Your goal: change the pipeline so that the inner loop's
final artifact scores higher on the objective **{objective}** (higher is better after the task's direction).

## What you may edit (nothing else)
- `{PROMPT_FILE}`: the synthesizer's system prompt, a template. Placeholders: $brief (the task's live
  description), $answer_format, $helpers (the helper library's text), $objective, $language; `$$` is a literal $.
- `{FEEDBACK_FILE}`: `build_feedback(ctx) -> str`, the iteration prompt built from the evaluation history.
  It runs in a sandbox (no files, no network); its docstring describes `ctx`.
- `{HELPERS_FILE}`: Python source prepended to every synthesized artifact (Python tasks); document what
  you add in the system prompt. Information and tools, not solutions.
- `{CONFIG_FILE}`: iteration config, strictly validated (bounds in its comments; unknown fields are errors).

`{PROGRAM_FILE}`, the task, its metrics, the evaluator, the sandbox, the seed pools and the measurement are
frozen: they are hashed before every measurement and any change is refused and recorded. Do not create
other files in this directory (the measurement refuses them).

## Measuring: the only way to get a score
The evaluation service's base URL is in your instructions and in the environment variable
`SYNTHLOOP_SERVICE_URL` (written `$URL` below); send the header
`Authorization: Bearer $SYNTHLOOP_SERVICE_TOKEN` with every request (a researcher with tools calls them instead).
POST $URL/experiments with JSON {{"summary": "<what you changed>", "reason": "<why it should help>"}}.
The service snapshots this directory, runs {replicates} independent inner-loop replicates and answers with the
objective's mean and 95% CI, the paired difference to the incumbent and the decision. The **harness** decides:
an experiment is kept only when its paired improvement beats a noise-calibrated margin; otherwise the
directory is restored to the incumbent exactly (untracked files removed). Other endpoints:
GET $URL/status (budget, incumbent), GET $URL/ledger (all experiments), POST $URL/discard
{{"reason": "..."}} (abandon unmeasured edits). Budget: {'; '.join(caps)}; when it is spent the service
answers HTTP 429 and the run ends. Per-seed results and held-out scores are never shown.
"""


def keep_decision(cand: list[float | None], inc: list[float | None], sign: float, floor_sd: float,
                  rule: KeepRule) -> tuple[str, str, Stat, float | None]:
    """Apply the keep rule; returns (decision, reason, paired delta, margin)."""
    failed = sum(v is None for v in cand)
    if failed:
        return "discard", f"{failed} of {len(cand)} replicates produced no valid policy", Stat.of([]), None
    if all(v is None for v in inc):
        return "keep", "the incumbent produced no valid policy; every candidate replicate did", Stat.of([]), None
    d = [sign * (c - i) for c, i in zip(cand, inc, strict=True) if c is not None and i is not None]
    delta = Stat.of(d)
    if len(d) < 2:
        return "discard", f"only {len(d)} valid pair(s): the noise cannot be calibrated", delta, None
    s = max(statistics.stdev(d), floor_sd)
    margin = max(rule.min_delta, t_quantile(len(d) - 1, rule.confidence) * s / math.sqrt(len(d)))
    mean = statistics.fmean(d)
    if mean > margin:
        return "keep", f"paired improvement {mean:.6g} beats the noise margin {margin:.6g}", delta, margin
    return "discard", f"paired improvement {mean:.6g} does not beat the noise margin {margin:.6g}", delta, margin


class Harness:
    """Owns the workspace, the ledger, the executors and the incumbent; thread-safe for the service."""

    def __init__(self, run_dir: Path, setup: InnerSetup, *, replicates: int = 3, budget: Budget | None = None,
                 rule: KeepRule | None = None, extra_frozen: list[Path] | None = None,
                 workers: int | None = None, start_files: dict[str, str] | None = None,
                 resume: bool = False) -> None:
        if replicates < 2:
            raise ValueError("replicates must be at least 2: one draw cannot calibrate the noise of the keep rule")
        self.run_dir = run_dir
        self.setup = setup
        self.replicates = replicates
        self.budget = budget or Budget()
        if self.budget.evals < 2:
            raise ValueError("budget.evals must be at least 2 (the baseline plus one experiment)")
        self.rule = rule or KeepRule()
        self.extra_frozen = list(extra_frozen or [])
        self.workers = workers
        self.start_files = start_files
        self.lock = threading.Lock()
        self.t0 = self._beat = time.monotonic()
        names = {m.name: m for m in setup.task.objectives()}
        if setup.objective != "score" and setup.objective not in names:
            raise ValueError(f"unknown objective {setup.objective!r}; valid: score, {', '.join(names)}")
        self.sign = -1.0 if setup.objective in names and names[setup.objective].direction == "min" else 1.0
        run_dir.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(run_dir / "autoresearch.sqlite")
        now = frozen_manifest(setup.task, self.extra_frozen)
        if resume:  # the run goes on only with exactly what its scores meant when it started
            pinned = self.ledger.get_meta("frozen_manifest")
            changed = manifest_mismatch(pinned or {}, now)
            if pinned is None or changed:
                self.ledger.close()
                raise ValueError(f"cannot resume {str(run_dir)!r}: the frozen measurement path changed since the run"
                                 f" started ({', '.join(changed[:5]) or 'no pinned manifest'})")
            self.manifest = pinned
        else:
            self.manifest = now
            self.ledger.set_meta("frozen_manifest", self.manifest)
        #: wall seconds used by earlier sessions of this run (checkpointed, see :meth:`_heartbeat`)
        self.wall_before = float(self.ledger.get_meta("wall_used_s", 0.0)) if resume else 0.0
        self.executor = make_executor("local", setup.task, setup.task_name, setup.task_options, workers)
        self.builder = make_executor("local", FeedbackBuilderTask(), FeedbackBuilderTask.name, {}, 2)
        self.executor.start()  # fork the sandboxes' zygotes now: main thread, before any service thread
        self.builder.start()
        self.measurer = Measurer(setup, self.executor, self.builder, run_dir / "inner")
        self.ws: Workspace | None = None
        self.program = ""
        self.start_commit = self.incumbent = ""
        self.incumbent_values: list[float | None] = []
        self.floor_sd = 0.0
        self.stopped = ""

    # ------------------------------------------------------------------ lifecycle
    def open_workspace(self) -> Workspace:
        """Create the workspace (program.md states the rules) and measure the starting pipeline."""
        s = self.setup
        self.program = program_text(s.objective, s.task_name, self.replicates, self.budget)
        self.ws = Workspace.create(self.run_dir / "workspace", self.run_dir / "pipeline.git", self.program,
                                   self.start_files)
        self.start_commit = self.incumbent = self.ws.head()
        self.ledger.set_meta("start_commit", self.start_commit)
        self._baseline()
        return self.ws

    def _baseline(self) -> None:
        s = self.setup
        assert self.ws is not None
        pipe = Pipeline.from_files(self.ws.files_at(self.start_commit), s.task, self.start_commit)
        m = self.measurer.measure(pipe, "exp000", self.replicates)
        self.incumbent_values = m.values
        self._set_floor(m.values)
        st = m.stat
        with self.ledger.transaction():
            self._charge(m, 0)
            self.ledger.add_experiment(
                id=0, kind="baseline", summary="starting pipeline", reason="", commit_sha=self.start_commit,
                incumbent_sha=self.start_commit, diff="", status="ok" if not m.n_failed else "failed",
                objective_mean=st.mean, ci_low=st.lo, ci_high=st.hi, n=st.n, n_failed=m.n_failed,
                values_json=_values(m), decision="baseline", decision_reason="starting pipeline",
                errors=_dumps(m.errors), tokens=m.tokens, cost_usd=m.cost_usd, wall_s=m.wall_s)
            self.ledger.set_meta("run", {"task": s.task_name, "objective": s.objective, "pool": m.pool,
                                         "replicates": self.replicates, "budget": self.budget.__dict__,
                                         "synthesizer": s.synth_model, "start_commit": self.start_commit,
                                         "pick": s.pick, "rule": self.rule.__dict__})
        self._heartbeat(force=True)

    def _set_floor(self, values: list[float | None]) -> None:
        valid = [v for v in values if v is not None]
        self.floor_sd = math.sqrt(2) * statistics.stdev(valid) if len(valid) > 1 else 0.0

    def resume_workspace(self) -> list[str]:
        """Reopen an interrupted run's workspace at its incumbent; returns what was recovered, for the log.

        The experiment in flight when the run died (its inner run directories exist but it has no ledger row)
        becomes an ``interrupted`` row, charged with what its inner runs had spent; unmeasured edits left in
        the workspace become an ``interrupted`` row with their diff; either way the incumbent is restored
        exactly. Neither counts as an evaluation.
        """
        ws_root, git_dir = self.run_dir / "workspace", self.run_dir / "pipeline.git"
        start = self.ledger.get_meta("start_commit")
        if start is None:  # killed while the workspace was being created: nothing was measured yet
            shutil.rmtree(ws_root, ignore_errors=True)
            shutil.rmtree(git_dir, ignore_errors=True)
            self.open_workspace()
            return ["the workspace was never completed; it was created afresh"]
        self.ws = ws = Workspace(ws_root, git_dir)
        self.start_commit = start
        self.program = ws.git("show", f"{start}:{PROGRAM_FILE}")
        rows = self.ledger.experiments()
        if not rows:
            tokens, _ = self._charge_inflight("exp000", 0)
            self._set_aside("exp000")
            ws.discard(start)
            self.incumbent = start
            self._baseline()
            return [f"the baseline measurement was interrupted ({tokens} tokens spent on it): measured again"]
        self._set_floor(json.loads(rows[0]["values_json"])["picked"])
        inc = next(r for r in reversed(rows) if r["decision"] in ("keep", "baseline"))
        self.incumbent, self.incumbent_values = inc["commit_sha"], json.loads(inc["values_json"])["picked"]
        n = len(rows)
        label = f"exp{n:03d}"
        notes = []
        ws.git("add", "-A")
        tree = ws.git("write-tree").strip()
        edits = ws.git("diff", "--cached", "--no-color", self.incumbent)
        ws.git("reset", "-q")
        last = rows[-1]["commit_sha"]
        decided = bool(last) and ws.git("rev-parse", f"{last}^{{tree}}").strip() == tree  # not an edit: a decision
        common = dict(id=n, kind="interrupted", status="none", decision="interrupted", incumbent_sha=self.incumbent,
                      errors="[]", wall_s=0.0)
        with self.ledger.transaction():
            if list((self.run_dir / "inner").glob(f"{label}_r*")):
                snap = ws.git("rev-parse", "-q", "--verify", f"refs/experiments/{n}", check=False).strip()
                tokens, cost = self._charge_inflight(label, n)
                self.ledger.add_experiment(
                    **common, summary="experiment interrupted while being measured", reason="",
                    commit_sha=snap or None, diff=ws.diff(self.incumbent, snap) if snap else edits,
                    decision_reason="the run was killed while this experiment was being measured; its edits were"
                                    " discarded on resume (not counted as an evaluation; its spend is)",
                    tokens=tokens, cost_usd=cost)
                notes.append(f"experiment {n} was interrupted while being measured ({tokens} tokens spent): recorded"
                             " and discarded")
            elif edits.strip() and not decided:
                self.ledger.add_experiment(
                    **common, summary="unmeasured edits interrupted", reason="", commit_sha=None, diff=edits,
                    decision_reason="the run was killed while the researcher was editing; the unmeasured edits were"
                                    " discarded on resume", tokens=0, cost_usd=0.0)
                notes.append("unmeasured edits left by the interrupted researcher: recorded and discarded")
        self._set_aside(label)
        ws.discard(self.incumbent)
        return notes

    def _charge_inflight(self, label: str, exp: int) -> tuple[int, float]:
        """Charge what the inner runs of an interrupted measurement had spent (their run.sqlite files)."""
        from synthloop.store.db import RunDB

        calls = inp = out = 0
        cost = 0.0
        for d in sorted((self.run_dir / "inner").glob(f"{label}_r*")):
            if not (d / "run.sqlite").is_file():
                continue
            try:
                db = RunDB(d / "run.sqlite")
                try:
                    t = db.llm_totals()
                finally:
                    db.close()
            except sqlite3.Error:
                continue
            calls += int(t["calls"])
            inp += int(t["input_tokens"])
            out += int(t["output_tokens"])
            cost += float(t["cost_usd"])
        if calls:
            self.ledger.add_llm("synthesizer", self.setup.synth_model, calls=calls, input_tokens=inp,
                                output_tokens=out, cost_usd=cost, experiment=exp)
        return inp + out, cost

    def _set_aside(self, label: str) -> None:
        """Move an unfinished measurement's inner runs to inner/interrupted/ (audit), freeing its label."""
        dest_root = self.run_dir / "inner" / "interrupted"
        for d in sorted((self.run_dir / "inner").glob(f"{label}_r*")):
            dest_root.mkdir(parents=True, exist_ok=True)
            dest, k = dest_root / d.name, 1
            while dest.exists():
                dest, k = dest_root / f"{d.name}.{k}", k + 1
            d.rename(dest)

    def close(self) -> None:
        self.executor.close()
        self.builder.close()

    # ------------------------------------------------------------------ budget
    def wall_used(self) -> float:
        """Wall seconds this run has used, earlier sessions included."""
        return self.wall_before + time.monotonic() - self.t0

    def _heartbeat(self, force: bool = False) -> None:
        """Checkpoint the wall time used (at most every 2 s unless forced): a killed run loses at most that."""
        now = time.monotonic()
        if force or now - self._beat >= 2.0:
            self._beat = now
            self.ledger.set_meta("wall_used_s", round(self.wall_used(), 3))

    def spent(self) -> str:
        """Why the budget is spent ('' while it is not)."""
        self._heartbeat()
        b = self.budget
        n = sum(1 for r in self.ledger.experiments() if r["kind"] in ("baseline", "experiment"))
        tot = self.ledger.spend()
        tokens = sum(v["tokens"] for v in tot.values())
        usd = sum(v["cost_usd"] for v in tot.values())
        if n >= b.evals:
            return f"evaluation budget spent: {n} of {b.evals}"
        if b.tokens is not None and tokens >= b.tokens:
            return f"token budget spent: {tokens} of {b.tokens}"
        if b.usd is not None and usd >= b.usd:
            return f"dollar budget spent: ${usd:.4f} of ${b.usd:.4f}"
        if b.wall_s is not None and self.wall_used() >= b.wall_s:
            return f"wall-time budget spent: {self.wall_used():.0f} s of {b.wall_s:g} s"
        return ""

    def status(self) -> dict[str, Any]:
        rows = self.ledger.experiments()
        inc = next((r for r in reversed(rows) if r["decision"] in ("keep", "baseline")), None)
        tot = self.ledger.spend()
        return {
            "objective": self.setup.objective, "task": self.setup.task_name, "replicates": self.replicates,
            "experiments": sum(1 for r in rows if r["kind"] in ("baseline", "experiment")),
            "budget": {"evals": self.budget.evals, "tokens": self.budget.tokens, "usd": self.budget.usd,
                       "wall_s": self.budget.wall_s},
            "used": {"tokens": sum(v["tokens"] for v in tot.values()),
                     "usd": sum(v["cost_usd"] for v in tot.values()),
                     "wall_s": round(self.wall_used(), 1)},
            "spent": self.spent() or None,
            # the researcher's own calls stop on these; a spent evaluation budget is answered by 429 instead
            "spent_llm": bool(self.spent()) and not self.spent().startswith("evaluation"),
            "incumbent": None if inc is None else {"experiment": inc["id"], "summary": inc["summary"],
                                                   **Stat(inc["objective_mean"], inc["ci_low"], inc["ci_high"],
                                                          inc["n"] or 0).to_dict()},
        }

    def _usd_left(self) -> float | None:
        """Dollars left for one measurement's synthesizer calls (the inner engines stop there)."""
        if self.budget.usd is None:
            return None
        left = self.budget.usd - sum(v["cost_usd"] for v in self.ledger.spend().values())
        return max(left, 1e-9)

    def _charge(self, m: Measurement, exp: int) -> None:
        self.ledger.add_llm("synthesizer", self.setup.synth_model, calls=sum(r.llm_calls for r in m.replicates),
                            input_tokens=sum(r.input_tokens for r in m.replicates),
                            output_tokens=sum(r.output_tokens for r in m.replicates), cost_usd=m.cost_usd,
                            experiment=exp)

    def refuse(self, source: str, action: str, path: str, reason: str) -> None:
        self.ledger.refuse(source, action, path, reason)

    # ------------------------------------------------------------------ experiments
    def experiment(self, summary: str, reason: str, source: str = "service") -> tuple[int, dict[str, Any]]:
        """Measure the workspace as it is now; returns (HTTP status, researcher-visible body)."""
        assert self.ws is not None, "open_workspace() first"
        with self.lock:
            why = self.spent()
            if why:
                self.refuse(source, "measure", "-", why)
                return 429, {"error": why, "budget_spent": True}
            now = frozen_manifest(self.setup.task, self.extra_frozen)
            changed = manifest_mismatch(self.manifest, now)
            if changed:
                msg = f"frozen measurement path changed: {', '.join(changed[:10])}"
                self.refuse(source, "measure", ", ".join(changed[:10]), "frozen file changed; measurement refused")
                return 409, {"error": msg, "refused": True}
            n = len(self.ledger.experiments())
            try:
                snap = self.ws.snapshot(n, f"experiment {n}: {summary[:200]}", self.incumbent, self.program)
                pipe = Pipeline.from_files(snap.files, self.setup.task, snap.commit)
            except Refused as e:
                self.refuse(source, e.action, e.path, e.reason)
                return 422, {"error": str(e), "refused": True}
            except PipelineError as e:
                self.refuse(source, "measure", "pipeline", str(e))
                return 422, {"error": str(e), "refused": True}
            diff = self.ws.diff(self.incumbent, snap.commit)
            label = f"exp{n:03d}"
            try:
                m = self.measurer.measure(pipe, label, self.replicates, max_cost_usd=self._usd_left())
            except Exception as e:  # noqa: BLE001 - the harness must answer and restore, whatever broke
                self.ws.discard(self.incumbent)
                with self.ledger.transaction():
                    self._charge_inflight(label, n)
                    self.refuse(source, "measure", snap.commit[:12], f"measurement crashed: {type(e).__name__}: {e}")
                self._set_aside(label)
                return 500, {"error": f"measurement crashed ({type(e).__name__}); workspace restored"}
            decision, why, delta, margin = keep_decision(m.values, self.incumbent_values, self.sign,
                                                         self.floor_sd, self.rule)
            prev, st = self.incumbent, m.stat
            with self.ledger.transaction():  # the decision is durable before the workspace moves
                self._charge(m, n)
                self.ledger.add_experiment(
                    id=n, kind="experiment", summary=summary, reason=reason, commit_sha=snap.commit,
                    incumbent_sha=prev, diff=diff, status="ok" if not m.n_failed else "failed", objective_mean=st.mean,
                    ci_low=st.lo, ci_high=st.hi, n=st.n, n_failed=m.n_failed, values_json=_values(m),
                    delta_mean=delta.mean, delta_ci_low=delta.lo, delta_ci_high=delta.hi, margin=margin,
                    decision=decision, decision_reason=why, errors=_dumps(m.errors), tokens=m.tokens,
                    cost_usd=m.cost_usd, wall_s=m.wall_s)
            if decision == "keep":
                self.ws.keep(snap.commit)
                self.incumbent, self.incumbent_values = snap.commit, m.values
            else:
                self.ws.discard(self.incumbent)
            self._heartbeat(force=True)
            inc = Stat.of([v for v in self.incumbent_values if v is not None])
            body = {"experiment": n, "objective": self.setup.objective, "result": st.to_dict(),
                    "n_failed": m.n_failed, "errors": [e[:1500] for e in m.errors],
                    "incumbent": inc.to_dict(), "paired_delta": delta.to_dict(), "margin": margin,
                    "decision": decision, "decision_reason": why,
                    "cost": {"tokens": m.tokens, "usd": m.cost_usd, "wall_s": round(m.wall_s, 2)},
                    "budget_left": self.spent() or "available"}
            return 200, body

    def abandon(self, reason: str, source: str = "service") -> dict[str, Any]:
        """The researcher drops unmeasured edits: restore the incumbent exactly; recorded, costs no budget."""
        assert self.ws is not None
        with self.lock:
            n = len(self.ledger.experiments())
            self.ws.git("add", "-A")
            diff = self.ws.git("diff", "--cached", "--no-color", self.incumbent)
            self.ws.discard(self.incumbent)
            self.ledger.add_experiment(
                id=n, kind="abandon", summary="abandoned edits", reason=reason, commit_sha=None,
                incumbent_sha=self.incumbent, diff=diff, status="none", decision="abandoned",
                decision_reason="researcher discarded unmeasured edits", errors="[]", tokens=0, cost_usd=0.0,
                wall_s=0.0)
            return {"decision": "abandoned", "restored": self.incumbent[:12]}

    # ------------------------------------------------------------------ final gate
    def gate(self) -> dict[str, Any]:
        """Fresh replicates of the start and the incumbent on the held-out pool; a plain verdict."""
        assert self.ws is not None
        with self.lock:
            task = self.setup.task
            if not task.pools().heldout:
                verdict: dict[str, Any] = {"status": "no held-out pool", "verdict": "the task has no held-out pool: no final gate"}
                self.ledger.set_meta("gate", verdict)
                return verdict
            changed = manifest_mismatch(self.manifest, frozen_manifest(task, self.extra_frozen))
            if changed:
                self.refuse("harness", "gate", ", ".join(changed[:10]), "frozen file changed; gate refused")
                verdict = {"status": "refused", "verdict": "Final gate refused: the frozen measurement path changed"
                           f" ({', '.join(changed[:10])}); no held-out result is trustworthy."}
                self.ledger.set_meta("gate", verdict)
                return verdict
            res: dict[str, list[float | None]] = {}
            done = {r["role"]: r for r in self.ledger.gate_rows()}  # a resumed run keeps a finished half
            for role, commit in (("start", self.start_commit), ("incumbent", self.incumbent)):
                row = done.get(role)
                if row is not None and row["commit_sha"] == commit:
                    res[role] = json.loads(row["values_json"])
                    continue
                label = f"gate_{role}"
                self._charge_inflight(label, -1)  # an interrupted attempt's spend, if any
                self._set_aside(label)
                pipe = Pipeline.from_files(self.ws.files_at(commit), task, commit)
                m = self.measurer.measure(pipe, label, self.replicates, pool="heldout", seed_offset=10_000)
                st = m.stat
                with self.ledger.transaction():
                    self._charge(m, -1)
                    self.ledger.add_gate(role, commit, "heldout", m.values, st.mean, st.lo, st.hi, st.n, m.errors)
                res[role] = m.values
            stats = {k: Stat.of([v for v in vals if v is not None]) for k, vals in res.items()}
            pairs = [self.sign * (b - a) for a, b in zip(res["start"], res["incumbent"], strict=True)
                     if a is not None and b is not None]
            delta = Stat.of(pairs)
            same = self.start_commit == self.incumbent
            beats = (not same and delta.n >= 2 and delta.lo is not None and delta.lo > 0
                     and all(v is not None for v in res["incumbent"]))
            if same:
                text = ("No edit was kept: the discovered pipeline is the starting pipeline, so it does not beat the"
                        " start.")
            elif beats:
                text = (f"The discovered pipeline beats the start on held-out: paired delta {delta.mean:.6g}, "
                        f"95% CI [{delta.lo:.6g}, {delta.hi:.6g}].")
            else:
                text = ("The discovered pipeline does NOT beat the start on held-out (paired delta "
                        f"{_fmt(delta.mean)}, 95% CI [{_fmt(delta.lo)}, {_fmt(delta.hi)}]).")
            verdict = {"status": "beats" if beats else ("unchanged" if same else "does not beat"), "verdict": text,
                       "start": stats["start"].to_dict(), "incumbent": stats["incumbent"].to_dict(),
                       "paired_delta": delta.to_dict(), "start_commit": self.start_commit,
                       "incumbent_commit": self.incumbent,
                       "diff": self.ws.diff(self.start_commit, self.incumbent)}
            self.ledger.set_meta("gate", verdict)
            return verdict

    def editable(self) -> tuple[str, ...]:
        return EDITABLE


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.6g}"


def _values(m: Measurement) -> str:
    """Per-replicate values (harness-only): the picked policy's, and both the last and best iteration's."""
    return _dumps({"picked": m.values, "last": [r.last for r in m.replicates],
                   "best": [r.best for r in m.replicates]})


def _dumps(x: Any) -> str:
    import json

    return json.dumps(x)
