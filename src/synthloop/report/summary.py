"""Run summaries: the data behind `synthloop show`, report.json and the progress plot."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from synthloop.store.db import RunDB
from synthloop.store.lock import is_locked

#: statuses a `synthloop resume` continues from
RESUMABLE = ("interrupted", "stale", "failed")


def run_status(run_dir: Path, stored: str | None) -> str:
    """The status to show: the stored one, except that a run stored as running whose lock nobody holds is
    ``stale`` (its process died without recording an end: kill -9, power loss). ``created`` before any start."""
    if stored is None:
        return "created"
    if stored == "running" and is_locked(run_dir) is False:
        return "stale"
    return stored


def _reasons(c: dict[str, Any], note: str | None) -> list[str]:
    """Why one candidate is not valid, as short lines that repeat across candidates (for counting)."""
    if c["status"] == "invalid" and note:  # the validator's problems, joined by "; " when there were several
        raw = note.split("; ")
    elif c["status"] == "failed" and note:
        raw = [note]
    else:  # evaluated, invalid: its kind groups candidates; a lone diagnostic is the reason itself
        diags = c["diagnostics"]
        kind = f"invalid in evaluation ({c['error_kind'] or 'invalid'})"
        raw = [f"{kind}: {diags[0]}" if len(diags) == 1 else kind]
    out = []
    for r in raw:
        text = str(r).split("\nstderr (tail):", 1)[0].strip()
        if "Traceback (most recent call last)" in text:  # what was raised, not where: the traceback's last line
            head, _, trace = text.partition("Traceback (most recent call last)")
            last = [x.strip() for x in trace.splitlines() if x.strip()]
            head = head.strip()
            text = head if not last or last[-1] in head else f"{head} {last[-1]}".strip()
        line = text.split("\n", 1)[0]
        line = re.sub(r"^line \d+(, column \d+)?: |\[case [^\]]*\] ", "", line).strip()
        if line:
            out.append(line[:200])
    return out or [str(c["error_kind"] or c["status"])]


def rejections(cands: list[dict[str, Any]], notes: dict[int, str | None], top: int = 5) -> list[dict[str, Any]]:
    """The most common reasons candidates were rejected, ``[{reason, count}]``, most frequent first."""
    counts: Counter[str] = Counter()
    for c in cands:
        if c["valid"] or c["status"] == "proposed":
            continue
        counts.update(set(_reasons(c, notes.get(c["id"]))))
    return [{"reason": r, "count": n} for r, n in counts.most_common(top)]


def summarize(run_dir: Path, db: RunDB | None = None) -> dict[str, Any]:
    """Everything a script needs about a run, as one JSON-ready dict (private values excluded)."""
    own = db is None
    db = db or RunDB(run_dir / "run.sqlite", readonly=True)
    try:
        evals: dict[int, dict[str, list[Any]]] = {}
        for cid, _rep, ev in db.all_evaluations():
            evals.setdefault(cid, {}).setdefault(ev.pool, []).append(ev)
        cands, notes = [], {}
        for row in db.candidates():
            notes[row["id"]] = row["note"]
            e = evals.get(row["id"], {})
            fb = e.get("feedback", [None])[0]
            sel = e.get("selection") or e.get("feedback") or []
            sel_score = None
            if sel and all(x.valid for x in sel):
                sel_score = sum(float(x.score) for x in sel) / len(sel)
            held = e.get("heldout", [None])[0]
            cands.append({
                "id": row["id"], "generation": row["generation"], "slot": row["slot"], "parent": row["parent_id"],
                "origin": row["origin"], "status": row["status"], "attempts": row["attempts"],
                "valid": bool(fb.valid) if fb else False,
                "score": fb.score if fb else None, "selection_score": sel_score,
                "heldout_score": held.score if held else None,
                "metrics": fb.metrics if fb else {}, "error_kind": fb.error_kind if fb else row["status"],
                "diagnostics": (fb.diagnostics if fb else ([row["note"]] if row["note"] else []))[:20],
                "artifact": row["path"],
            })
        by_gen: dict[int, list[dict[str, Any]]] = {}
        for c in cands:
            by_gen.setdefault(c["generation"], []).append(c)
        per_iter, running = [], None
        for g in sorted(by_gen):
            scores = [c["selection_score"] for c in by_gen[g] if c["selection_score"] is not None]
            gbest = max(scores) if scores else None
            if gbest is not None:
                running = gbest if running is None else max(running, gbest)
            per_iter.append({"generation": g, "proposals": len(by_gen[g]), "valid": len(scores), "best": gbest,
                             "best_so_far": running})
        best_id, final_id = db.get_meta("best"), db.get_meta("final")
        pick = {c["id"]: c for c in cands}
        best = pick.get(best_id)
        if best is not None and best["selection_score"] is None:  # older runs stored an invalid champion
            best = None
        valid = [c for c in cands if c["selection_score"] is not None]
        if best_id is None and valid:  # a run that has not reached its end (yet): the best so far
            best = max(valid, key=lambda c: (c["selection_score"], -c["id"]))
        synth = db.get_meta("synthesizer", {}) or {}
        task = db.get_meta("task", {}) or {}
        status = run_status(run_dir, db.get_meta("status"))
        return {
            "run_dir": str(run_dir), "task": task.get("name"), "objective": task.get("objective"),
            "reference": task.get("reference"), "synthesizer": synth,
            # `mutate` is a baseline, not an LLM; where the prompts went (--base-url or *_BASE_URL), if not the default
            "baseline": synth.get("kind") == "baseline", "base_url": synth.get("base_url"),
            "status": status, "error": db.get_meta("error"), "stopped": db.get_meta("stopped"),
            "hint": f"resume with: synthloop resume {run_dir}" if status in RESUMABLE else None,
            "best": best, "final": pick.get(final_id),
            "valid_candidates": len(valid),
            "rejections": rejections(cands, notes),
            "iterations": per_iter, "candidates": cands, "gate": db.get_meta("gate"),
            "totals": {**db.llm_totals(), "wall_s": db.get_meta("wall_s", 0.0), "candidates": len(cands),
                       # False: cost_usd is 0 because the model has no price at that endpoint, not because it is free
                       "priced": synth.get("priced") is not False,
                       "invalid": sum(1 for c in cands if not c["valid"] and c["status"] != "proposed"),
                       # stored but not evaluated: in flight when the run stopped; `synthloop resume` evaluates them
                       "unevaluated": sum(1 for c in cands if c["status"] == "proposed")},
        }
    finally:
        if own:
            db.close()


def write_report(run_dir: Path, summary: dict[str, Any]) -> None:
    (run_dir / "report.json").write_text(json.dumps(summary, indent=1, default=str))
    try:
        plot_progress(summary, run_dir / "progress.png")
    except Exception as e:  # a plot must never lose a run's results
        (run_dir / "progress.png.error").write_text(f"{type(e).__name__}: {e}\n")


def plot_progress(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cands = summary["candidates"]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    xs = [c["id"] for c in cands if c["selection_score"] is not None]
    ys = [c["selection_score"] for c in cands if c["selection_score"] is not None]
    bad = [c["id"] for c in cands if c["selection_score"] is None]
    ax.scatter(xs, ys, s=10, alpha=0.6, label="candidate (selection score)")
    best, bx, by = None, [], []
    for x, y in zip(xs, ys):
        best = y if best is None else max(best, y)
        bx.append(x)
        by.append(best)
    ax.step(bx, by, where="post", color="C1", label="best so far")
    if bad and ys:
        ax.scatter(bad, [min(ys)] * len(bad), marker="x", color="C3", s=14, label="invalid")
    ref = summary.get("reference")
    if ref:
        ax.axhline(ref[0], ls="--", color="gray", label=f"reference {ref[0]} ({ref[1]})")
    ax.set_xlabel("candidate")
    ax.set_ylabel(summary.get("objective") or "score")
    ax.set_title(f"{summary.get('task')} — {summary.get('synthesizer', {}).get('name', '?')}")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def end_of_run(summary: dict[str, Any]) -> tuple[int, list[str]]:
    """The exit code of the command that ran (or resumed) a run, and the lines it owes stderr.

    A failed run exits 1 with its cause in one line; a completed run exits 0, even when it found no valid
    candidate: the search ran as asked and its summary says so (with the rejection reasons).
    """
    if summary.get("status") == "failed":
        hint = summary.get("hint")
        return 1, [f"error: {summary.get('error') or 'the run failed'}" + (f"; {hint}" if hint else "")]
    return 0, []
