"""`synthloop report RUN` for the safety tasks: R and R* curves, the specification's evolution, the noise heat map.

A report is for the experimenter, so unlike every prompt it *does* show the
hidden performance R*: it reads the ``private`` values the run stored (the
model never saw them). Everything comes from the run database, so a report
can be rebuilt at any time, including for runs that stopped on budget.

* one run: ``curves.png`` (mean R and mean R* per round, with true violations
  and reported warnings below), ``spec_evolution.md`` (σ of round 0, then one
  unified diff per round, each with its metrics and the reflection that wrote
  it), ``rounds.json`` (the same numbers, machine-readable);
* a sweep (a directory holding run directories): the above for no run, but
  ``noise_heatmap_<method>.png`` per method (environment × false-positive
  rate, cells = final-round mean R* at rate p ÷ the same at p = 0, averaged
  over repeats, as the reference's noise-robustness figure) plus
  ``sweep_summary.md`` / ``sweep_summary.json``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from synthloop.store.db import RunDB
from synthloop.tasks.safety.metrics import normalised_performance
from synthloop.tasks.safety.task import HELDOUT_GEN_BASE


def is_run_dir(path: Path) -> bool:
    return (path / "run.sqlite").is_file()


def find_runs(root: Path) -> list[Path]:
    """Run directories under ``root`` (a sweep), sorted."""
    return sorted(p.parent for p in root.rglob("run.sqlite"))


# ---- one run ----------------------------------------------------------------
def load_run(run_dir: Path) -> dict[str, Any]:
    """Per-round R, R*, counts and σ, the reflections, the gate with held-out R and R*; private values included."""
    db = RunDB(run_dir / "run.sqlite", readonly=True)
    try:
        safety = db.get_meta("safety", {}) or {}
        task = db.get_meta("task", {}) or {}
        rounds: list[dict[str, Any]] = []
        final: dict[str, Any] | None = None
        heldout: dict[int, dict[str, Any]] = {}
        for row in db.candidates():
            gen = int(row["generation"])
            evs = {e.pool: e for e in db.evaluations(row["id"])}
            reflection = db.conn.execute(
                "SELECT response_text FROM llm_calls WHERE generation=? AND slot=0 AND attempt=0 ORDER BY id DESC"
                " LIMIT 1", (gen,)).fetchone()
            entry: dict[str, Any] = {"round": gen, "candidate": row["id"], "specification": row["content"] or "",
                                     "reflection": reflection["response_text"] if reflection else None,
                                     "status": row["status"]}
            fb = evs.get("feedback")
            if fb is not None:
                danger = fb.channels.get("danger", {}).get("summary", {})
                entry.update(mean_reward=fb.score, mean_performance=fb.private.get("mean_performance"),
                             true_violations=danger.get("true_violations"),
                             reported_warnings=danger.get("reported_warnings"),
                             spurious_warnings=danger.get("spurious_warnings"),
                             goals_reached=int(fb.metrics.get("goals_reached", 0)))
                rounds.append(entry)
            else:
                final = entry  # σ after the last reflection: not played in training
            ho = evs.get("heldout")
            if ho is not None:
                heldout[row["id"]] = {"mean_reward": ho.score, "mean_performance": ho.private.get("mean_performance"),
                                      "violation_rate": ho.metrics.get("violation_rate")}
        gate = db.get_meta("gate") or {}
        for r in gate.get("rows", []):
            extra = heldout.get(r["candidate"], {})
            r["heldout_performance"] = extra.get("mean_performance")
        n_calls = db.conn.execute("SELECT COUNT(*) FROM llm_calls WHERE generation < ?",
                                  (HELDOUT_GEN_BASE,)).fetchone()[0]
        return {"run_dir": str(run_dir), "task": task.get("name"), "env_id": safety.get("env_id"),
                "method": safety.get("method"), "options": safety.get("options", {}),
                "variant": safety.get("variant", {}), "status": db.get_meta("status"), "rounds": rounds,
                "final_specification": final, "gate": gate, "training_calls": n_calls}
    finally:
        db.close()


def _title(data: dict[str, Any]) -> str:
    o = data.get("options") or {}
    return (f"{data.get('task')} — {data.get('method')}, p_fp={o.get('false_positive_rate', 0):g}, "
            f"K={o.get('episodes')}")


def plot_curves(data: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = data["rounds"]
    xs = [r["round"] + 1 for r in rounds]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), dpi=110, sharex=True,
                                      gridspec_kw={"height_ratios": [2, 1]})
    top.plot(xs, [r["mean_reward"] for r in rounds], "o-", label="mean R (visible)")
    perf = [r["mean_performance"] if r["mean_performance"] is not None else math.nan for r in rounds]
    top.plot(xs, perf, "s--", label="mean R* (hidden)")
    top.set_ylabel("return")
    top.set_title(_title(data), fontsize=9)
    top.legend(fontsize=8)
    bottom.bar([x - 0.2 for x in xs], [r["true_violations"] or 0 for r in rounds], width=0.4,
               label="true violations")
    bottom.bar([x + 0.2 for x in xs], [r["reported_warnings"] or 0 for r in rounds], width=0.4,
               label="reported warnings")
    bottom.set_xlabel("round")
    bottom.set_ylabel("count")
    bottom.set_xticks(xs)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    return f"{x:.2f}" if isinstance(x, float) else str(x)


def spec_evolution(data: dict[str, Any]) -> str:
    """Markdown: σ of round 0, then one unified diff per round, each with its round's numbers."""
    out = [f"# Specification evolution: {_title(data)}", "",
           f"Run `{data['run_dir']}`, status {data.get('status')}, variant `{json.dumps(data.get('variant'))}`.", ""]
    out += ["| round | mean R | mean R* | true violations | reported warnings | goals |", "|---|---|---|---|---|---|"]
    for r in data["rounds"]:
        out.append(f"| {r['round'] + 1} | {_fmt(r['mean_reward'])} | {_fmt(r['mean_performance'])} | "
                   f"{_fmt(r['true_violations'])} | {_fmt(r['reported_warnings'])} | {_fmt(r['goals_reached'])} |")
    steps = list(data["rounds"]) + ([data["final_specification"]] if data.get("final_specification") else [])
    previous: str | None = None
    for r in steps:
        label = (f"Round {r['round'] + 1}" if "mean_reward" in r
                 else "Final specification (after the last reflection; not played in training)")
        out += ["", f"## {label}", ""]
        if previous is None:
            out += ["```text", r["specification"].rstrip(), "```"]
        else:
            diff = list(difflib.unified_diff(previous.splitlines(), r["specification"].splitlines(),
                                             f"round {r['round']}", f"round {r['round'] + 1}", lineterm=""))
            out += ["```diff", *(diff or ["(unchanged)"]), "```"]
            if r.get("reflection"):
                out += ["", "<details><summary>reflection that wrote it</summary>", "", "```text",
                        r["reflection"].rstrip(), "```", "</details>"]
        previous = r["specification"]
    gate = data.get("gate") or {}
    if gate.get("rows"):
        out += ["", f"## Held-out episodes (gate: {gate.get('status')})", "",
                "| role | round | training R | held-out R | held-out R* | held-out violation rate |",
                "|---|---|---|---|---|---|"]
        for g in gate["rows"]:
            out.append(f"| {g['role']} | {g['generation'] + 1} | {_fmt(g['in_distribution'])} | "
                       f"{_fmt(g['heldout'])} | {_fmt(g.get('heldout_performance'))} | "
                       f"{_fmt(g.get('heldout_violation_rate'))} |")
    return "\n".join(out) + "\n"


def report_run(run_dir: Path, out_dir: Path) -> list[Path]:
    data = load_run(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "rounds.json", out_dir / "spec_evolution.md"]
    paths[0].write_text(json.dumps(data, indent=1, default=str))
    paths[1].write_text(spec_evolution(data))
    if data["rounds"]:
        paths.append(plot_curves(data, out_dir / "curves.png"))
    return paths


# ---- a sweep ------------------------------------------------------------------
def final_performance(data: dict[str, Any]) -> float | None:
    """The last training round's mean R* (over non-interrupted episodes), the heat map's raw value."""
    return data["rounds"][-1]["mean_performance"] if data["rounds"] else None


def sweep_table(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method: env × rate cells of normalised R* (mean over repeats), with the raw values."""
    raw: dict[tuple[str, str, float], list[float]] = {}
    for d in runs:
        value = final_performance(d)
        rate = float((d.get("options") or {}).get("false_positive_rate", 0.0))
        if value is not None and d.get("env_id") and d.get("method"):
            raw.setdefault((d["method"], d["env_id"], rate), []).append(value)
    methods = sorted({k[0] for k in raw})
    table: dict[str, Any] = {}
    for m in methods:
        envs = sorted({k[1] for k in raw if k[0] == m})
        rates = sorted({k[2] for k in raw if k[0] == m})
        cells: dict[str, dict[str, float | None]] = {}
        for e in envs:
            base = raw.get((m, e, 0.0))
            base_mean = statistics.fmean(base) if base else None
            cells[e] = {f"{p:g}": normalised_performance(statistics.fmean(raw[(m, e, p)]), base_mean)
                        if (m, e, p) in raw else None for p in rates}
        per_rate = {}
        for p in rates:
            vals = [v for e in envs if (v := cells[e][f"{p:g}"]) is not None]
            se = statistics.stdev(vals) / math.sqrt(len(vals)) if len(vals) > 1 else None
            per_rate[f"{p:g}"] = {"mean": statistics.fmean(vals) if vals else None, "se": se}
        table[m] = {"envs": envs, "rates": rates, "normalised": cells, "mean_over_envs": per_rate,
                    "raw": {f"{e}@{p:g}": raw[(m, e, p)] for e in envs for p in rates if (m, e, p) in raw}}
    return table


def plot_heatmap(method: str, entry: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs, rates = entry["envs"], entry["rates"]
    grid = [[entry["normalised"][e][f"{p:g}"] for p in rates] for e in envs]
    values = [[math.nan if v is None else v for v in row] for row in grid]
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(rates), 1.2 + 0.5 * len(envs)), dpi=110)
    im = ax.imshow(values, cmap="RdYlGn", vmin=0.0, vmax=1.2, aspect="auto")
    ax.set_xticks(range(len(rates)), [f"{p:g}" for p in rates])
    ax.set_yticks(range(len(envs)), envs)
    ax.set_xlabel("false-positive rate")
    ax.set_title(f"normalised R* — {method}", fontsize=9)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, "–" if v is None else f"{v:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.05)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def report_sweep(root: Path, out_dir: Path) -> list[Path]:
    runs = [load_run(r) for r in find_runs(root)]
    table = sweep_table(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "sweep_summary.json", out_dir / "sweep_summary.md"]
    summary = {"root": str(root), "runs": [{k: d[k] for k in ("run_dir", "env_id", "method", "status")}
                                           | {"rate": (d.get("options") or {}).get("false_positive_rate"),
                                              "final_performance": final_performance(d),
                                              "final_reward": d["rounds"][-1]["mean_reward"] if d["rounds"] else None}
                                           for d in runs],
               "normalised_performance": table}
    paths[0].write_text(json.dumps(summary, indent=1, default=str))
    md = [f"# Sweep {root}", "", f"{len(runs)} runs. Cells: final-round mean R* at rate p ÷ the same at p = 0."]
    for m, entry in table.items():
        md += ["", f"## {m}", "", "| env | " + " | ".join(f"p={p:g}" for p in entry["rates"]) + " |",
               "|---|" + "---|" * len(entry["rates"])]
        for e in entry["envs"]:
            md.append(f"| {e} | " + " | ".join(_fmt(entry["normalised"][e][f"{p:g}"]) for p in entry["rates"]) + " |")
        md.append("| mean ± SE | " + " | ".join(
            f"{_fmt(c['mean'])} ± {_fmt(c['se'])}" for c in entry["mean_over_envs"].values()) + " |")
        paths.append(plot_heatmap(m, entry, out_dir / f"noise_heatmap_{m}.png"))
    paths[1].write_text("\n".join(md) + "\n")
    return paths


def report(run_dir: Path, out_dir: Path) -> list[Path]:
    """Write the report of a run, or of a sweep when ``run_dir`` holds run directories; return the files."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if is_run_dir(run_dir):
        return report_run(run_dir, out_dir)
    if find_runs(run_dir):
        return report_sweep(run_dir, out_dir)
    raise FileNotFoundError(f"{str(run_dir)!r} is neither a run directory nor a directory of runs")


def main(argv: list[str] | None = None) -> int:
    """``report RUN_OR_SWEEP [--out DIR]``; prints the files written. Exit 2 on a bad path."""
    parser = argparse.ArgumentParser(prog="synthloop report", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory, or a directory of runs (a sweep)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: RUN/report)")
    args = parser.parse_args(argv)
    try:
        paths = report(args.run, args.out or args.run / "report")
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
