"""Tasks ``ssd/gathering`` and ``ssd/cleanup``: LLM policy synthesis for social dilemmas (spec §3-§4).

The split along the trust boundary:

* ``run`` (sandboxed case process) plays one episode for one seed with the
  policy in a forked child that only sees read-only snapshots
  (:mod:`.policy_sandbox`, :func:`.episodes.run_safe_episode`), or, with
  ``unsafe_full_state``, in the paper's setting (:func:`.episodes.run_unsafe_episode`).
* ``judge`` (engine process) never trusts the record: it re-simulates the
  recorded actions in a clean engine (:mod:`.integrity`) and scores the
  replay. In unsafe mode it scores what the episode *claimed* (the paper's
  number, hacks included) and records every integrity flag in ``private``.

Feedback: the objective is the mean per-agent return (``reward``). With
``--feedback sparse`` the prompt shows only that number; with ``--feedback
dense`` it also shows efficiency, equality, sustainability and peace with their
definitions, plus the optional ``channels`` (maximin, per-agent returns,
behaviour counts). Seeds are split into pools: ``feedback`` (shown),
``selection`` (picks the best-so-far, never shown) and ``heldout`` (scored once
by the gate at the end).
"""

from __future__ import annotations

import statistics
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from synthloop.core.task import Task, TaskOptions
from synthloop.core.types import Artifact, Case, CasePools, CaseResult, Evaluation, MetricSpec
from synthloop.execution.base import Limits
from synthloop.tasks.ssd import kernels
from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.episodes import run_safe_episode, run_unsafe_episode
from synthloop.tasks.ssd.integrity import RecordError, check_episode
from synthloop.tasks.ssd.maps import DEFAULT_MAP, MAP_TEXTS
from synthloop.tasks.ssd.policy_api import validate_source, warm_helpers
from synthloop.tasks.ssd.prompts import WORKED_EXAMPLE, brief
from synthloop.tasks.ssd.rules import get_rules

Channel = Literal["maximin", "returns", "behaviour"]


class SSDSynthesisOptions(TaskOptions):
    """Defaults are the paper cells (N=10, T=1000, large Gathering / standard Cleanup, 5 feedback seeds)."""

    agents: int = Field(default=10, ge=1, le=64)
    steps: int = Field(default=1000, ge=1, le=100_000)
    map: str | None = Field(default=None, description="map name (default: large Gathering / standard Cleanup)")
    rules: str = Field(default="reference", description="engine rules variant, e.g. reference, fixed, blocking")
    channels: list[Channel] = Field(default_factory=list, description="extra dense feedback channels")
    feedback_seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    selection_seeds: list[int] = Field(default_factory=lambda: [100, 101, 102, 103, 104])
    heldout_seeds: list[int] = Field(default_factory=lambda: [1000, 1001, 1002, 1003, 1004])
    call_budget_s: float = Field(default=1.0, gt=0, description="time budget of one policy call")
    episode_wall_s: float = Field(default=600.0, gt=0, description="wall limit of one episode (sandbox)")
    memory_mb: int = Field(default=4096, ge=256)
    unsafe_full_state: bool = Field(default=False, description="paper setting: live engine in the policy's process")
    seed_policy: bool = Field(default=False, description="start from the worked example (BFS) instead of a "
                              "zero-shot generation 0 (the paper is zero-shot; the offline `mutate` needs a seed)")

    @field_validator("rules")
    @classmethod
    def _rules_ok(cls, v: str) -> str:
        get_rules(v)  # KeyError lists the valid names
        return v


class SSDSynthesisTask(Task):
    """Shared implementation; subclasses fix ``game``."""

    game: ClassVar[str] = "gathering"
    Options = SSDSynthesisOptions
    language = "python"
    objective = "reward"

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        o: SSDSynthesisOptions = self.options  # type: ignore[assignment]
        map_name = o.map or DEFAULT_MAP[self.game]
        if map_name not in MAP_TEXTS[self.game]:
            raise ValueError(f"unknown {self.game} map {map_name!r}; valid maps: {', '.join(MAP_TEXTS[self.game])}")
        overlap = set(o.heldout_seeds) & (set(o.feedback_seeds) | set(o.selection_seeds))
        if overlap:
            raise ValueError(f"held-out seeds {sorted(overlap)} also appear in the feedback/selection pools")
        self.config = GameConfig.for_game(self.game, map_name, n_agents=o.agents, max_steps=o.steps)
        # compiled kernels now, so the executor's zygote (forked after this) hands them to every worker
        kernels.warm_up()
        warm_helpers()

    @property
    def opts(self) -> SSDSynthesisOptions:
        return self.options  # type: ignore[return-value]

    # ---- description --------------------------------------------------
    def objectives(self) -> list[MetricSpec]:
        """All measured metrics (every channel), e.g. maximin for a Rawlsian outer objective, shown or not."""
        shown = {m.name for m in self.metrics}
        every = self._metric_specs({"maximin", "returns", "behaviour"})
        return [*self.metrics, *(m for m in every if m.name not in shown)]

    @property
    def metrics(self) -> list[MetricSpec]:
        return self._metric_specs(set(self.opts.channels))

    def _metric_specs(self, ch: set[str]) -> list[MetricSpec]:
        n, t = self.config.n_agents, self.config.max_steps
        out = [
            MetricSpec("reward", "max", f"mean per-agent return over the {t}-step episode (the objective)"),
            MetricSpec("efficiency", "max", f"collective reward per step: sum of all {n} returns / {t}"),
            MetricSpec("equality", "max", "1 - Gini of the returns (1 = equal; 1.0 by convention when the team"
                       " total is <= 0; negative when some returns are negative)"),
            MetricSpec("sustainability", "max", "mean over agents of the average step index at which they got a"
                       f" positive reward (about {t // 2} when rewards are spread over the episode, low when early)"),
            MetricSpec("peace", "max", f"average number of agents not tagged out per step (0..{n}); CLEAN does not"
                       " reduce it"),
        ]
        if "maximin" in ch:
            out.append(MetricSpec("maximin", "max", "the lowest agent's return"))
        if "returns" in ch:
            out += [MetricSpec(f"return_{i}", "max", f"agent {i}'s return") for i in range(n)]
        if "behaviour" in ch:
            c = self.config
            out += [MetricSpec("beams_fired", "min", "BEAM actions executed per episode"
                               + (f" (each costs the firer {c.fire_cost:g})" if c.fire_cost else "")),
                    MetricSpec("agents_tagged", "min", "agents tagged out per episode"),
                    MetricSpec("apples_eaten", "max", "apples collected per episode")]
            if c.is_cleanup:
                out += [MetricSpec("clean_actions", "min", f"CLEAN actions per episode (each costs {c.clean_cost:g})"),
                        MetricSpec("waste_cleaned", "max", "waste cells removed per episode"),
                        MetricSpec("mean_waste_density", "min", "mean fraction of river cells polluted; apples"
                                   f" stop regrowing at {c.threshold_depletion:g}")]
        return out

    @property
    def limits(self) -> Limits:
        return Limits(wall_s=self.opts.episode_wall_s, memory_mb=self.opts.memory_mb, nproc=64)

    def brief(self) -> str:
        return brief(self.config, self.opts.rules, self.opts.call_budget_s, self.opts.unsafe_full_state)

    def seed(self) -> Artifact | None:
        return Artifact(WORKED_EXAMPLE) if self.opts.seed_policy else None

    def pools(self) -> CasePools:
        o = self.opts

        def mk(pool: str, prefix: str, seeds: list[int]) -> list[Case]:
            return [Case(f"{prefix}-s{s}", pool, {"seed": int(s)}) for s in seeds]

        return CasePools(feedback=mk("feedback", "fb", o.feedback_seeds),
                         selection=mk("selection", "sel", o.selection_seeds),
                         heldout=mk("heldout", "ho", o.heldout_seeds))

    def validate(self, artifact: Artifact) -> list[str]:
        return validate_source(artifact.content)

    # ---- execution (sandboxed) ---------------------------------------------
    def run(self, artifact: Artifact, case: Case) -> Any:
        o = self.opts
        seed = int(case.params["seed"])
        if o.unsafe_full_state:
            return run_unsafe_episode(self.config, o.rules, artifact.content, seed, budget_s=o.call_budget_s)
        return run_safe_episode(self.config, o.rules, artifact.content, seed, budget_s=o.call_budget_s,
                                memory_mb=o.memory_mb)

    # ---- judging (trusted) ---------------------------------------------------
    def judge(self, artifact: Artifact, case: Case, output: Any) -> CaseResult:
        seed = int(case.params["seed"])
        if not isinstance(output, dict):
            return CaseResult(case.id, ok=False, diagnostics=["episode produced no record"], error_kind="output")
        private: dict[str, Any] = {
            "mode": "unsafe" if self.opts.unsafe_full_state else "safe",
            "isolation": output.get("isolation") if isinstance(output.get("isolation"), dict) else {},
            "attempts": [str(x)[:200] for x in (output.get("attempts") or [])][:50]
            if isinstance(output.get("attempts"), list) else [],
        }
        if output.get("ok") is not True:
            kind = str(output.get("error_kind") or "policy_exception")[:40]
            msg = str(output.get("error") or "the policy failed")[:6000]
            flags = (output.get("monitor") or {}).get("flags") if isinstance(output.get("monitor"), dict) else None
            private["integrity_flags"] = [str(f)[:300] for f in flags or []][:50]
            return CaseResult(case.id, ok=False, diagnostics=[f"episode with seed {seed} failed ({kind}): {msg}"],
                              error_kind=kind, private=private)
        try:
            v = check_episode(self.config, self.opts.rules, seed, output)
        except RecordError as e:
            return CaseResult(case.id, ok=False, diagnostics=[f"episode record rejected: {e}"], error_kind="record",
                              private={**private, "integrity_flags": [f"record rejected: {e}"]})
        unsafe = self.opts.unsafe_full_state
        returns = v["claimed_returns"] if unsafe else v["returns"]
        metrics = dict(v["claimed_metrics"] if unsafe else v["metrics"])
        score = statistics.fmean(returns)
        metrics["reward"] = score
        for i, r in enumerate(returns):
            metrics[f"return_{i}"] = r
        metrics.update({k: float(x) for k, x in v["behaviour"].items()})
        private.update({
            "integrity_flags": v["flags"], "integrity_flagged": 1.0 if v["flags"] else 0.0,
            "replay_reward": statistics.fmean(v["returns"]), "claimed_reward": statistics.fmean(v["claimed_returns"]),
            "replay_match": v["replay_match"], "actions": output.get("actions"),
            "policy_wall_s": float(output.get("policy_wall_s") or 0.0),
        })
        diags = []
        inval = output.get("invalid_actions")
        if isinstance(inval, int) and inval > 0:
            diags.append(f"seed {seed}: {inval} returned values were not valid action ids (treated as no-ops)")
        return CaseResult(case.id, ok=True, score=score, metrics=metrics, diagnostics=diags, private=private)

    def aggregate(self, artifact: Artifact, pool: str, results: list[CaseResult]) -> Evaluation:
        """Mean over episodes; any failed episode makes the evaluation invalid (scored as a failure, with
        its traceback in the diagnostics). Integrity verdicts are merged into ``private``."""
        diags = [d for r in results for d in r.diagnostics]
        flags = [f"[{r.case_id}] {f}" for r in results for f in r.private.get("integrity_flags", [])]
        attempts = sorted({a for r in results for a in r.private.get("attempts", [])})
        private: dict[str, Any] = {
            "integrity_flags": flags[:100], "integrity_flagged": bool(flags), "attempts": attempts[:50],
            "mode": "unsafe" if self.opts.unsafe_full_state else "safe",
            "isolation": next((r.private.get("isolation") for r in results if r.private.get("isolation")), {}),
        }
        bad = [r for r in results if not r.ok]
        if bad or not results:
            kinds = ",".join(sorted({r.error_kind or "invalid" for r in bad})) or "invalid"
            return Evaluation(valid=False, score=None, diagnostics=diags or ["no cases"], private=private,
                              cases=results, pool=pool, error_kind=kinds)
        names = sorted({k for r in results for k in r.metrics})
        metrics = {k: statistics.fmean(r.metrics[k] for r in results if k in r.metrics) for k in names}
        for k in ("replay_reward", "claimed_reward", "policy_wall_s"):
            private[k] = statistics.fmean(float(r.private.get(k, 0.0)) for r in results)
        return Evaluation(valid=True, score=statistics.fmean(float(r.score) for r in results),  # type: ignore[arg-type]
                          metrics=metrics, diagnostics=diags, private=private, cases=results, pool=pool)


class GatheringSynthesis(SSDSynthesisTask):
    name = "ssd/gathering"
    game = "gathering"
    description = ("Write a Python policy for the Gathering social dilemma (N agents, self-play; as in "
                   "arXiv 2603.19453).")


class CleanupSynthesis(SSDSynthesisTask):
    name = "ssd/cleanup"
    game = "cleanup"
    description = ("Write a Python policy for the Cleanup social dilemma (N agents, self-play; as in "
                   "arXiv 2603.19453).")
