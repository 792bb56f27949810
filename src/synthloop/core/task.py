"""The Task contract: what is optimized and how it is judged.

A task is split along the trust boundary:

* ``run(artifact, case)`` executes candidate code. It is only ever called
  inside a sandboxed worker process (see :mod:`synthloop.execution`) and must
  return something JSON-serialisable.
* ``judge(artifact, case, output)`` scores that output. It runs in the
  trusted engine process, so a candidate cannot patch the scorer; it must
  treat ``output`` as hostile data (validate types, sizes, finiteness).
* ``validate(artifact)`` is a static, pre-execution check (syntax, a missing
  entry point). It gives early, precise messages; safety never depends on it.

Prompt material comes from ``brief()``, which is generated from the task's
live options so numbers in prompts cannot drift from the code.
"""

from __future__ import annotations

import ast
import statistics
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from synthloop.core.types import Artifact, Case, CasePools, CaseResult, Evaluation, Limits, MetricSpec


class TaskOptions(BaseModel):
    """Base for task options; unknown keys are an error (no dead config)."""

    model_config = ConfigDict(extra="forbid")


class Task(ABC):
    """Base class for every task. Subclasses set ``name`` and ``Options``."""

    name: ClassVar[str] = "abstract"
    description: ClassVar[str] = ""
    Options: ClassVar[type[TaskOptions]] = TaskOptions
    language: ClassVar[str] = "python"
    #: what a higher score means, shown in reports
    objective: ClassVar[str] = "score"
    #: a published or known reference value for the objective, shown in reports
    reference: ClassVar[tuple[float, str] | None] = None

    def __init__(self, options: TaskOptions | dict[str, Any] | None = None) -> None:
        if options is None:
            options = {}
        if isinstance(options, dict):
            options = self.Options(**options)
        self.options = options

    # ---- description -------------------------------------------------
    @property
    def metrics(self) -> list[MetricSpec]:
        return [MetricSpec(self.objective, "max")]

    def objectives(self) -> list[MetricSpec]:
        """Every metric the task measures that an outer loop may optimise, whether or not prompts show it."""
        return self.metrics

    @property
    def limits(self) -> Limits:
        return Limits()

    @abstractmethod
    def brief(self) -> str:
        """System prompt material: the problem, the artifact's API, the rules."""

    def seed(self) -> Artifact | None:
        return None

    @abstractmethod
    def pools(self) -> CasePools:
        """Evaluation cases split into feedback / selection / heldout."""

    # ---- checks and execution -----------------------------------------
    def validate(self, artifact: Artifact) -> list[str]:
        """Static problems with the artifact (empty list = fine). Default: Python must parse."""
        if artifact.language != "python":
            return []
        try:
            ast.parse(artifact.content)
        except SyntaxError as e:
            return [f"SyntaxError: {e.msg} (line {e.lineno}, column {e.offset})"]
        return []

    @abstractmethod
    def run(self, artifact: Artifact, case: Case) -> Any:
        """Execute the candidate on one case. Called only inside the sandbox."""

    @abstractmethod
    def judge(self, artifact: Artifact, case: Case, output: Any) -> CaseResult:
        """Score the sandbox's output for one case. Called in the trusted process."""

    def aggregate(self, artifact: Artifact, pool: str, results: list[CaseResult]) -> Evaluation:
        """Combine per-case results: mean score and metrics over cases; invalid if any case failed."""
        diags: list[str] = []
        for r in results:
            diags.extend(f"[case {r.case_id}] {d}" for d in r.diagnostics)
        bad = [r for r in results if not r.ok]
        if bad or not results:
            kinds = sorted({r.error_kind or "invalid" for r in bad})
            return Evaluation(
                valid=False, score=None, diagnostics=diags or ["no cases"], cases=results, pool=pool,
                error_kind=",".join(kinds) or "invalid",
            )
        score = statistics.fmean(float(r.score) for r in results)  # type: ignore[arg-type]
        names = sorted({k for r in results for k in r.metrics})
        metrics = {
            k: statistics.fmean(r.metrics[k] for r in results if k in r.metrics) for k in names
        }
        private: dict[str, Any] = {}
        pnames = sorted({k for r in results for k in r.private})
        for k in pnames:
            vals = [r.private[k] for r in results if k in r.private]
            if all(isinstance(v, (int, float)) for v in vals):
                private[k] = statistics.fmean(vals)
        return Evaluation(valid=True, score=score, metrics=metrics, diagnostics=diags, private=private,
                          cases=results, pool=pool)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for `synthloop tasks` and run records."""
        pools = self.pools()
        return {
            "name": self.name,
            "description": self.description,
            "language": self.language,
            "objective": self.objective,
            "reference": list(self.reference) if self.reference else None,
            "metrics": [m.__dict__ for m in self.metrics],
            "pools": {p: len(pools.get(p)) for p in ("feedback", "selection", "heldout")},
            "options": self.options.model_dump(),
        }
