"""Circle packing: 26 circles in the unit square, maximise the sum of radii.

The validator is strict and runs in the trusted process on the numbers the
sandbox returned: exactly N circles, finite values, positive radii, every
circle inside the square and no two overlapping, all within a tolerance of
1e-9. Peers shipped evaluators that accepted invalid packings (an OpenEvolve
evaluator credited a packing with sum 4.01; a published ShinkaEvolve packing
fails its own strict check), so no tolerance is ever scaled by the score.

AlphaEvolve's reported sum for N = 26 is 2.635 (shown as the reference).
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
from pydantic import Field

from synthloop.core.task import Task, TaskOptions
from synthloop.core.types import Artifact, Case, CasePools, CaseResult, Limits, MetricSpec
from synthloop.tasks.examples._exec import entry_point

SEED = '''import math


def construct():
    """Return a list of 26 (x, y, r) tuples: circles inside the unit square, none overlapping."""
    shrink = 0.90  # fraction of the grid spacing each circle's radius uses
    gap_fill = 0.80  # fraction of the free interstice the 26th circle uses
    circles = []
    step = 0.2
    r = shrink * step / 2
    for i in range(5):
        for j in range(5):
            circles.append((step / 2 + i * step, step / 2 + j * step, r))
    # the 26th circle sits in the interstice between four grid circles
    free = math.sqrt(2) * step / 2 - r
    circles.append((step, step, gap_fill * free))
    return circles
'''


class CirclePackingOptions(TaskOptions):
    n: int = Field(default=26, ge=1, le=1000, description="number of circles")
    tol: float = Field(default=1e-9, ge=0, le=1e-6, description="feasibility tolerance")
    wall_s: float = Field(default=20.0, gt=0, description="time limit per construction")


class CirclePacking(Task):
    name = "examples/circle_packing"
    description = "Pack N circles (default 26) in the unit square maximising the sum of radii; strict validator."
    Options = CirclePackingOptions
    objective = "sum_radii"
    reference = (2.635, "AlphaEvolve, N=26")

    @property
    def metrics(self) -> list[MetricSpec]:
        return [
            MetricSpec("sum_radii", "max", "sum of the radii of a valid packing"),
            MetricSpec("min_radius", "max", "smallest radius"),
            MetricSpec("min_slack", "max", "smallest distance between a circle and a neighbour or a wall"),
        ]

    @property
    def limits(self) -> Limits:
        return Limits(wall_s=self.options.wall_s, memory_mb=2048)

    def brief(self) -> str:
        o = self.options
        ref = f" For N = 26 the best known sum is about {self.reference[0]}." if o.n == 26 else ""
        return (
            f"# Circle packing\nPack exactly {o.n} circles into the unit square [0, 1] x [0, 1] so that the sum"
            f" of their radii is as large as possible.{ref}\n\n"
            "Write a Python module that defines `construct()` returning a list of "
            f"{o.n} tuples `(x, y, r)`: centre and radius of each circle. numpy and the standard library are"
            " available; no network, files or subprocesses.\n"
            f"A packing is valid only if every radius is positive, every circle lies inside the square"
            f" (x - r >= 0, x + r <= 1, same for y) and no two circles overlap (distance between centres >= sum"
            f" of radii), each within a tolerance of {o.tol:g}. An invalid packing scores nothing."
            f" Construction time limit: {o.wall_s:g} s."
        )

    def seed(self) -> Artifact:
        return Artifact(SEED)

    def pools(self) -> CasePools:
        # construct() takes no input; cases differ only in the RNG seed set before the call, so a
        # construction that depends on luck shows it on the held-out seeds.
        mk = lambda pool, s: Case(f"seed{s}", pool, {"seed": s})  # noqa: E731
        return CasePools(feedback=[mk("feedback", 0)], selection=[mk("selection", 1)],
                         heldout=[mk("heldout", 2), mk("heldout", 3)])

    def run(self, artifact: Artifact, case: Case) -> Any:
        seed = int(case.params.get("seed", 0))
        random.seed(seed)
        np.random.seed(seed)
        circles = entry_point(artifact, "construct")()
        return np.asarray(circles, dtype=float).tolist()

    def judge(self, artifact: Artifact, case: Case, output: Any) -> CaseResult:
        ok, diags, metrics = validate_packing(output, self.options.n, self.options.tol)
        if not ok:
            return CaseResult(case.id, ok=False, diagnostics=diags, error_kind="invalid")
        return CaseResult(case.id, ok=True, score=metrics["sum_radii"], metrics=metrics, diagnostics=diags)


def validate_packing(output: Any, n: int, tol: float) -> tuple[bool, list[str], dict[str, float]]:
    """Strict feasibility check on untrusted data. Returns (ok, diagnostics, metrics)."""
    try:
        arr = np.asarray(output, dtype=float)
    except (TypeError, ValueError):
        return False, ["construct() must return a list of (x, y, r) number triples"], {}
    if arr.ndim != 2 or arr.shape[1] != 3:
        return False, [f"expected shape ({n}, 3), got {arr.shape}"], {}
    if arr.shape[0] != n:
        return False, [f"expected exactly {n} circles, got {arr.shape[0]}"], {}
    if not np.all(np.isfinite(arr)):
        return False, ["non-finite value (nan or inf) in the packing"], {}
    x, y, r = arr[:, 0], arr[:, 1], arr[:, 2]
    diags: list[str] = []
    if np.any(r <= 0):
        i = int(np.argmin(r))
        diags.append(f"circle {i} has non-positive radius {r[i]:.6g}")
    wall = np.minimum.reduce([x - r, 1 - x - r, y - r, 1 - y - r])
    for i in np.flatnonzero(wall < -tol)[:5]:
        diags.append(f"circle {i} at ({x[i]:.6g}, {y[i]:.6g}) r={r[i]:.6g} leaves the square by {-wall[i]:.3g}")
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    slack = d - (r[:, None] + r[None, :])
    np.fill_diagonal(slack, math.inf)
    bad = np.argwhere(np.triu(slack < -tol, 1))
    for i, j in bad[:5]:
        diags.append(f"circles {i} and {j} overlap by {-slack[i, j]:.3g}")
    if len(bad) > 5:
        diags.append(f"... {len(bad) - 5} more overlapping pairs")
    if diags:
        return False, diags, {}
    min_slack = float(min(slack.min(), wall.min()))
    metrics = {"sum_radii": float(r.sum()), "min_radius": float(r.min()), "min_slack": min_slack}
    return True, [f"valid packing of {n} circles; smallest slack {min_slack:.3g}"], metrics
