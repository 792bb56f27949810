"""Run policy source through the real default path: LocalExecutor (sandboxed case) -> task.run -> task.judge."""

from __future__ import annotations

import asyncio
from typing import Any

from synthloop.core.types import Artifact, Case, CaseResult
from synthloop.execution.local import LocalExecutor
from synthloop.tasks.registry import make_task

SMALL = {"agents": 4, "steps": 60, "map": "small", "feedback_seeds": [0, 1], "selection_seeds": [],
         "heldout_seeds": [7], "call_budget_s": 0.5, "episode_wall_s": 30, "memory_mb": 2048}


def evaluate_sources(game: str, sources: dict[str, str], unsafe: bool) -> dict[str, list[CaseResult]]:
    """Judge every source on the feedback seeds, in sandboxed workers; returns per-case results by name."""
    task = make_task(f"ssd/{game}", {**SMALL, "unsafe_full_state": unsafe})
    ex = LocalExecutor(task, workers=4)
    ex.start()
    cases: list[Case] = task.pools().feedback
    out: dict[str, list[CaseResult]] = {}

    async def go() -> None:
        for name, code in sources.items():
            art = Artifact(code)
            res = await ex.run(art, cases, task.limits)
            judged = []
            for c, o in zip(cases, res):
                if o.ok:
                    judged.append(task.judge(art, c, o.output))
                else:
                    judged.append(CaseResult(c.id, ok=False, diagnostics=[o.error], error_kind=o.error_kind))
            out[name] = judged

    try:
        asyncio.run(go())
    finally:
        ex.close()
    return out


def summary(results: list[CaseResult]) -> dict[str, Any]:
    return {
        "ok": all(r.ok for r in results),
        "returns": [[r.metrics.get(f"return_{i}") for i in range(SMALL["agents"])] for r in results if r.ok],
        "flags": [f for r in results for f in r.private.get("integrity_flags", [])],
        "errors": [r.error_kind for r in results if not r.ok],
        "why": [d[:160] for r in results for d in r.diagnostics][:2],
        "attempts": sorted({a for r in results for a in r.private.get("attempts", [])})[:4],
    }
