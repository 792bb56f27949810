"""A self-contained HTML report for any run: curves, held-out verdict, lineage diffs, totals.

One file with the plot embedded (base64 PNG), so it can be mailed or attached
to an issue. Domain packages may add their own report (see ``synthloop report``).
"""

from __future__ import annotations

import base64
import difflib
import html
from pathlib import Path
from typing import Any

from synthloop.report.labels import cost_text, is_baseline, synthesizer_label, unpriced_note
from synthloop.report.summary import plot_progress, summarize


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _fmt(v: Any) -> str:
    return "-" if v is None else (f"{v:.6g}" if isinstance(v, float) else _esc(v))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def improvement_chain(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Candidates that raised the best-so-far, in order: the lineage a reader wants to diff."""
    chain, best = [], None
    for c in summary["candidates"]:
        s = c["selection_score"]
        if s is not None and (best is None or s > best):
            chain.append(c)
            best = s
    return chain


def write_html_report(run_dir: Path, out: Path | None = None) -> Path:
    s = summarize(run_dir)
    out = out or run_dir / "report.html"
    png = run_dir / "progress.png"
    plot_progress(s, png)
    img = base64.b64encode(png.read_bytes()).decode()
    parts = [
        "<!doctype html><meta charset='utf-8'><title>synthloop report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px}pre{background:#f6f6f6;padding:8px;"
        "overflow-x:auto;font-size:12px}.flag{color:#b00;font-weight:bold}</style>",
        f"<h1>{_esc(s['task'])}</h1>",
        f"<p>run <code>{_esc(s['run_dir'])}</code> · synthesizer <b>{_esc(synthesizer_label(s['synthesizer']))}</b>"
        f" · status {_esc(s['status'])}</p>",
        f"<img src='data:image/png;base64,{img}' alt='score per candidate'>",
        "<h2>Per generation</h2>",
        _table(["generation", "proposals", "valid", "best", "best so far"],
               [[i["generation"], i["proposals"], i["valid"], i["best"], i["best_so_far"]] for i in s["iterations"]]),
    ]
    g = s.get("gate") or {}
    parts.append(f"<h2>Held-out gate: <span class='{'flag' if g.get('status') == 'flagged' else ''}'>"
                 f"{_esc(g.get('status'))}</span></h2>")
    if g.get("rows"):
        parts.append(_table(["role", "candidate", "in-distribution", "held-out", "relative drop", "flagged"],
                            [[r["role"], r["candidate"], r["in_distribution"], r["heldout"], r["relative_drop"],
                              r["flagged"]] for r in g["rows"]]))
    t, synth = s["totals"], s["synthesizer"]
    if is_baseline(synth):  # a baseline proposes without a model: no tokens, no cost, and never "LLM calls"
        parts.append("<h2>Totals</h2>" + _table(
            ["proposals", "failed", "synthesizer", "wall s", "candidates", "invalid", "not evaluated"],
            [[t["calls"], t["errors"], synthesizer_label(synth), t["wall_s"], t["candidates"], t["invalid"],
              t.get("unevaluated", 0)]]))
    else:
        parts.append("<h2>Totals</h2>" + _table(
            ["LLM calls", "failed", "input tokens", "output tokens", "cost", "wall s", "candidates", "invalid",
             "not evaluated"],
            [[t["calls"], t["errors"], t["input_tokens"], t["output_tokens"], cost_text(t["cost_usd"], synth),
              t["wall_s"], t["candidates"], t["invalid"], t.get("unevaluated", 0)]]))
        note = unpriced_note(synth)
        if note:
            parts.append(f"<p>{_esc(note)}</p>")
    parts.append("<h2>Improvements (diff against the previous best)</h2>")
    prev_text = None
    for c in improvement_chain(s):
        text = (run_dir / c["artifact"]).read_text() if c.get("artifact") else ""
        parts.append(f"<h3>candidate #{c['id']} · generation {c['generation']} · {_fmt(c['selection_score'])}</h3>")
        if prev_text is None:
            parts.append(f"<pre>{_esc(text)}</pre>")
        else:
            diff = "\n".join(difflib.unified_diff(prev_text.splitlines(), text.splitlines(), "previous best",
                                                  f"candidate {c['id']}", lineterm=""))
            parts.append(f"<pre>{_esc(diff) or '(identical text)'}</pre>")
        prev_text = text
    out.write_text("\n".join(parts))
    return out
