"""The autoresearch report, from the run directory alone (``autoresearch.sqlite`` + the pipeline repo).

Shows what a reader needs to judge the run rather than its best number: the
objective of every experiment with its CI, kept vs discarded and why, the
refusals, the cumulative diff of the discovered pipeline against the start,
spend per role, each researcher session with its jail (an unjailed external
researcher is flagged), interruptions, and the final held-out gate with its
plain verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synthloop.autoresearch.ledger import Ledger


def _f(x: Any) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    if abs(x) >= 1e300:
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


def _ci(lo: Any, hi: Any) -> str:
    return "n/a" if lo is None or hi is None else f"[{_f(lo)}, {_f(hi)}]"


def _last_best(values_json: str | None) -> str:
    """Mean objective of the last and of the best inner iteration (both reported; one is picked by rule)."""
    if not values_json:
        return ""
    v = json.loads(values_json)

    def mean(xs: list[float | None]) -> str:
        ok = [x for x in xs if x is not None]
        return _f(sum(ok) / len(ok)) if ok else "n/a"

    return f"{mean(v.get('last', []))} / {mean(v.get('best', []))}"


def collect(run_dir: Path) -> dict[str, Any]:
    """Everything the report shows, as JSON-ready data."""
    led = Ledger(run_dir / "autoresearch.sqlite", readonly=True)
    try:
        rows = led.experiments()
        data = {
            "run": led.get_meta("run", {}), "stop_reason": led.get_meta("stop_reason"),
            "gate": led.get_meta("gate"), "experiments": rows, "refusals": led.refusals(),
            "spend": led.spend(), "gate_rows": led.gate_rows(), "sessions": led.get_meta("sessions", []),
        }
    finally:
        led.close()
    data["kept"] = sum(r["decision"] == "keep" for r in rows)
    data["discarded"] = sum(r["decision"] == "discard" for r in rows)
    data["interrupted"] = sum(r["decision"] == "interrupted" for r in rows)
    data["unjailed"] = any(s.get("researcher") == "external" and not (s.get("jail") or {}).get("jailed")
                           for s in data["sessions"])
    return data


def _session(i: int, s: dict[str, Any]) -> str:
    head = f"- session {i} ({s.get('kind')}): "
    if s.get("researcher") is None:
        return head + f"final gate only ({s.get('note', 'no researcher')})"
    if s.get("researcher") != "external":
        return head + (f"built-in researcher `{s.get('model')}` (acts only through the harness's file tools and the"
                       " service)")
    j = s.get("jail") or {}
    if not j.get("jailed"):
        return head + f"external researcher `{s.get('command')}`, **UNJAILED** (--researcher-jail none)"
    env = ", ".join(j.get("env") or []) or "none"
    return head + (f"external researcher `{s.get('command')}`, jail {j.get('mode')} (network {j.get('network')};"
                   f" passed variables: {env}; hidden: {', '.join(j.get('hidden') or [])})")


def markdown(d: dict[str, Any]) -> str:
    run = d["run"]
    lines = [f"# Autoresearch report: {run.get('task')} ({run.get('objective')})", ""]
    lines.append(f"Synthesizer `{run.get('synthesizer')}`; {run.get('replicates')} replicates per experiment,"
                 f" scored on the {run.get('pool')} pool (policy picked: {run.get('pick')});"
                 f" stop: {d.get('stop_reason')}.")
    lines.append(f"Experiments: {sum(r['kind'] == 'experiment' for r in d['experiments'])} measured,"
                 f" {d['kept']} kept, {d['discarded']} discarded, {d.get('interrupted', 0)} interrupted;"
                 f" {len(d['refusals'])} refusal(s).")
    sessions = d.get("sessions") or []
    if d.get("unjailed"):
        lines += ["", "**Warning: an external researcher ran unjailed: it could read the run's private data"
                  " (inner runs, held-out values) and write outside its workspace.**"]
    if sessions:
        lines += ["", "## Researcher sessions", ""] + [_session(i, s) for i, s in enumerate(sessions, 1)]
    lines += ["", f"## Objective per experiment ({run.get('pool')} pool, mean and 95% CI)", "",
              "| # | kind | summary | objective | 95% CI | last / best iter. | paired delta | margin | decision | reason"
              " | tokens |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in d["experiments"]:
        delta = "" if r["delta_mean"] is None else f"{_f(r['delta_mean'])} {_ci(r['delta_ci_low'], r['delta_ci_high'])}"
        cells = [str(r["id"]), r["kind"], r["summary"][:60], _f(r["objective_mean"]), _ci(r["ci_low"], r["ci_high"]),
                 _last_best(r["values_json"]), delta, _f(r["margin"]) if r["margin"] is not None else "", r["decision"],
                 r["decision_reason"][:80], str(r["tokens"])]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    lines += ["", "## Spend per role", "", "| role | calls | tokens | $ |", "|---|---|---|---|"]
    for role, s in sorted(d["spend"].items()):
        lines.append(f"| {role} | {s['calls']} | {s['tokens']} | {s['cost_usd']:.4f} |")
    lines += ["", "## Refusals", ""]
    if d["refusals"]:
        lines += ["| source | action | path | reason |", "|---|---|---|---|"]
        lines += [f"| {x['source']} | {x['action']} | `{x['path']}` | {x['reason']} |" for x in d["refusals"]]
    else:
        lines.append("None.")
    lines += ["", "## Final gate (held-out pool, fresh replicates)", ""]
    g = d.get("gate")
    if not g:
        lines.append("The gate did not run.")
    else:
        lines.append(f"**{g['verdict']}**")
        if "start" in g:
            for role in ("start", "incumbent"):
                s = g[role]
                lines.append(f"- {role}: {_f(s['mean'])}, 95% CI {_ci(*s['ci95'])} (n={s['n']})")
            pd = g["paired_delta"]
            lines.append(f"- paired delta (discovered - start): {_f(pd['mean'])}, 95% CI {_ci(*pd['ci95'])}")
        lines += ["", "## Cumulative pipeline diff (discovered vs start)", "", "```diff",
                  (g.get("diff") or "(no change)").rstrip(), "```"]
    return "\n".join(lines) + "\n"


def report(run_dir: Path, out_dir: Path) -> list[Path]:
    """Write ``autoresearch_report.md`` and ``autoresearch_report.json`` into ``out_dir``; return their paths."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    d = collect(run_dir)
    md = out_dir / "autoresearch_report.md"
    md.write_text(markdown(d))
    js = out_dir / "autoresearch_report.json"
    js.write_text(json.dumps(d, indent=1, default=str))
    return [md, js]
