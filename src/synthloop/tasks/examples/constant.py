"""A trivial task whose score is a constant in the artifact: for engine tests and the overhead benchmark.

Mirrors the problem used to measure OpenEvolve's per-iteration overhead
(``x = 0.1  # tunable``; the score is x), so both can run side by side.
"""

from __future__ import annotations

import ast
import math
from typing import Any

from pydantic import Field

from synthloop.core.task import Task, TaskOptions
from synthloop.core.types import Artifact, Case, CasePools, CaseResult, Limits, MetricSpec
from synthloop.tasks.examples._exec import entry_point

SEED = '''"""The evolved constant is the score."""


def value():
    x = 0.100000000  # tunable
    return x
'''


class ConstantOptions(TaskOptions):
    heldout_penalty: float = Field(default=0.0, description="subtracted on the held-out pool (to test the gate)")
    wall_s: float = Field(default=5.0, gt=0)


class Constant(Task):
    name = "examples/constant"
    description = "Trivial: the score is the value returned by value(), at most 1. For tests and benchmarks."
    Options = ConstantOptions
    objective = "value"

    @property
    def metrics(self) -> list[MetricSpec]:
        return [MetricSpec("value", "max", "the number value() returns (capped at 1)")]

    @property
    def limits(self) -> Limits:
        return Limits(wall_s=self.options.wall_s, memory_mb=1024)

    def brief(self) -> str:
        return ("Write a Python module defining value() -> float. The score is the returned number;"
                " values above 1 are invalid. Maximise it.")

    def seed(self) -> Artifact:
        return Artifact(SEED)

    def pools(self) -> CasePools:
        return CasePools(feedback=[Case("fb", "feedback")], heldout=[Case("ho", "heldout")])

    def validate(self, artifact: Artifact) -> list[str]:
        problems = super().validate(artifact)
        if not problems and "value" not in {n.name for n in ast.parse(artifact.content).body
                                            if isinstance(n, ast.FunctionDef)}:
            problems.append("the module must define a function value()")
        return problems

    def run(self, artifact: Artifact, case: Case) -> Any:
        return float(entry_point(artifact, "value")())

    def judge(self, artifact: Artifact, case: Case, output: Any) -> CaseResult:
        if not isinstance(output, (int, float)) or isinstance(output, bool) or not math.isfinite(output):
            return CaseResult(case.id, ok=False, diagnostics=[f"value() must return a finite number, got {output!r}"],
                              error_kind="invalid")
        if output > 1:
            return CaseResult(case.id, ok=False, diagnostics=[f"value {output} is above the maximum 1"],
                              error_kind="invalid")
        v = float(output) - (self.options.heldout_penalty if case.pool == "heldout" else 0.0)
        return CaseResult(case.id, ok=True, score=v, metrics={"value": v})
