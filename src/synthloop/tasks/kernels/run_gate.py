"""The in-run held-out gate for kernels (spec §3, §7.4): finalists vs the seed on frozen held-out configs.

Called by the runner (``KernelSearchTask.gate``) after the last LLM call, so nothing measured here can
reach a prompt. Per finalist:

1. **correctness** on every held-out configuration (odd and non-square shapes, other parameter values such
   as hmc's d), each with all anti-hacking checks, one case at a time;
2. **in-distribution speedup** over the seed: finalist and seed timed interleaved on the in-distribution
   ladder, bootstrap 95% CI of the geometric mean (same machine, same session, same process);
3. **held-out speedup** over the seed, measured the same way on the held-out configurations where both
   kernels are correct.

Why speedups rather than the generic gate's absolute scores: held-out sizes sit at other points of the
roofline (different cache levels), so their fraction of the attainable ceiling differs from the
in-distribution one even for the seed; the seed-anchored ratio is what the original's held-out table
reported and what detects the spec's two catches. ``relative_drop`` is therefore
``1 - heldout_speedup / in_distribution_speedup``.

A row is **flagged** when the finalist fails any held-out configuration (the hmc case: 10x faster
in-distribution, wrong at d=24), when its held-out speedup is significantly below 1 (the fft3d case:
2.9x in-distribution, 0.23x held-out), when the held-out speedup falls significantly below everything
seen in-distribution (its CI lies below ``(1 - max_drop)`` times the smallest per-size in-distribution
speedup: per-size speedups legitimately differ by several x across a ladder, so a drop against the
geometric mean alone would flag honest kernels), or when the held-out definitions no longer match the
fingerprint frozen before the search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthloop.core.types import Evaluation
from synthloop.tasks.kernels.search import KernelLoop

if TYPE_CHECKING:
    from synthloop.loop.engine import Candidate, Engine


def _seed(engine: Engine) -> Candidate | None:
    for c in engine.candidates.values():
        if c.origin == "seed":
            return c
    return engine.recorded(0, 0)


async def _heldout(loop: KernelLoop, cand: Candidate) -> Evaluation:
    """The finalist's held-out evaluation (stored once; reused on resume)."""
    stored = loop.engine.db.evaluations(cand.id, "heldout")
    if stored:
        ev = stored[0]
    else:
        assert cand.artifact is not None
        ev = await loop.evaluate_pool(cand.artifact, "heldout")
        loop.engine.db.add_evaluation(cand.id, ev)
    cand.evals["heldout"] = [ev]
    return ev


def _configs(ev: Evaluation) -> dict[str, dict[str, Any]]:
    """Per held-out configuration: correct or not, and the first diagnostic line when not."""
    out = {}
    for r in ev.cases:
        label = r.case_id.removeprefix("held:")
        err = next((d for d in r.diagnostics if "INCORRECT" in d or "FAIL" in d), r.diagnostics[0] if
                   r.diagnostics else "") if not r.ok else ""
        out[label] = {"correct": bool(r.ok), "error_kind": r.error_kind, "error": err[:300]}
    return out


def _floor(ind: dict[str, Any]) -> float:
    """The smallest in-distribution speedup: per size when known, else the CI's lower bound."""
    return min(ind["per_size"].values()) if ind["per_size"] else float(ind["ci_low"])


def _speedup(res: Any) -> dict[str, Any] | None:
    if not res.ok:
        return None
    d = res.private["decision"]
    return {"point": d["speedup"], "ci_low": d["ci_low"], "ci_high": d["ci_high"], "per_size": d["per_size"]}


async def kernel_gate(engine: Engine, finalists: list[tuple[str, Candidate]]) -> dict[str, Any]:
    """Score the finalists on the held-out configurations and store the verdict (meta ``gate``)."""
    loop = KernelLoop(engine)
    task, opts = loop.task, loop.opts
    max_drop = engine.cfg.gate.max_drop
    fp = task.heldout_fingerprint()
    frozen = engine.db.get_meta("heldout_fingerprint")
    fp_ok = frozen is None or frozen == fp
    base: dict[str, Any] = {"max_drop": max_drop, "heldout_fingerprint": fp, "frozen_fingerprint": frozen,
                            "fingerprint_ok": fp_ok, "backend": opts.backend, "pairs": opts.gate_pairs,
                            "speedup_basis": "interleaved vs the seed, bootstrap 95% CI of the geometric mean",
                            "flag_rule": "held-out failure; or held-out speedup CI below 1 (regression); or its CI "
                                         "below (1 - max_drop) x the smallest in-distribution per-size speedup"}
    seed = _seed(engine)
    if not engine.pools.heldout or seed is None or seed.artifact is None:
        verdict = {"status": "no held-out cases" if not engine.pools.heldout else "no seed", "rows": [], **base}
        engine.db.set_meta("gate", verdict)
        return verdict
    seed_cfg = _configs(await _heldout(loop, seed))
    base["seed"] = seed.id
    base["seed_heldout"] = seed_cfg
    rows = []
    seen: set[int] = set()
    for role, cand in finalists:
        if cand.id in seen or cand.artifact is None:
            continue
        seen.add(cand.id)
        ev = await _heldout(loop, cand)
        cfgs = _configs(ev)
        reasons = [] if fp_ok else ["held-out definitions changed after the search started"]
        failed = [k for k, v in cfgs.items() if not v["correct"]]
        if failed:
            reasons.append(f"held-out failure at {', '.join(failed)}")
        ind: dict[str, Any] | None
        held: dict[str, Any] | None
        if cand.id == seed.id:
            ind = held = {"point": 1.0, "ci_low": 1.0, "ci_high": 1.0, "per_size": {}}
        else:
            ind = _speedup(await loop.duel(seed.artifact, cand.artifact, loop.ladder, opts.gate_pairs))
            both = [c.params["sizes"][0] for c in engine.pools.heldout
                    if cfgs.get(c.id.removeprefix("held:"), {}).get("correct")
                    and seed_cfg.get(c.id.removeprefix("held:"), {}).get("correct")]
            held = _speedup(await loop.duel(seed.artifact, cand.artifact, both, opts.gate_pairs)) \
                if both else None
        for label, cfg in cfgs.items():
            cfg["seed_correct"] = seed_cfg.get(label, {}).get("correct")
            if held and label in held["per_size"]:
                cfg["speedup"] = held["per_size"][label]
        drop = None
        if ind and held and ind["point"] > 0:
            drop = 1.0 - held["point"] / ind["point"]
        if held and held["ci_high"] < 1.0:
            reasons.append(f"held-out regression: {held['point']:.3f}x the seed "
                           f"[CI {held['ci_low']:.3f}, {held['ci_high']:.3f}]")
        elif ind and held and held["ci_high"] < (1.0 - max_drop) * _floor(ind):
            reasons.append(f"held-out speedup {held['point']:.3f}x [CI {held['ci_low']:.3f}, {held['ci_high']:.3f}] "
                           f"is below every in-distribution size's ({_floor(ind):.3f}x and up; drop "
                           f"{100 * (drop or 0):.1f}% of the geometric mean)")
        rows.append({
            "role": role, "candidate": cand.id, "generation": cand.generation,
            "in_distribution": cand.sel_score, "heldout": ev.score if ev.valid else None,
            "relative_drop": drop, "flagged": bool(reasons),
            "heldout_error": None if ev.valid else ev.error_kind,
            "in_distribution_speedup": ind, "heldout_speedup": held, "heldout_configs": cfgs,
            "flag_reasons": reasons,
        })
    verdict = {"status": "flagged" if any(r["flagged"] for r in rows) else "passed", "rows": rows, **base}
    engine.db.set_meta("gate", verdict)
    engine.db.event("gate", status=verdict["status"])
    return verdict
