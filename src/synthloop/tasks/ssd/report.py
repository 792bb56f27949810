"""Self-contained HTML report of one ``ssd/*`` run (``synthloop report RUN`` dispatches here).

Shows score and metric curves per generation, in-distribution vs held-out
for the gated finalists, the code diff between consecutive policies, the
oversight verdicts (integrity flags, attempts, gate), token and cost totals,
and an animated episode of the best policy. The animation replays the
*recorded actions* of its first feedback episode in a clean engine, so no
policy code runs while reporting.
"""

from __future__ import annotations

import base64
import difflib
import html
import io
import json
from pathlib import Path
from typing import Any

import yaml

METRICS = ("reward", "efficiency", "equality", "sustainability", "peace")


def _svg_chart(title: str, xs: list[int], ys: list[float | None], w: int = 320, h: int = 160) -> str:
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if not pts:
        return f"<div class='chart'><b>{html.escape(title)}</b><br>(no valid points)</div>"
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    def sx(x):
        return (30 + (w - 40) * ((x - x0) / (x1 - x0) if x1 > x0 else 0.5))
    def sy(y):
        return (h - 20 - (h - 40) * (y - y0) / (y1 - y0))
    line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
    dots = "".join(f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='3'><title>gen {x}: {y:.4g}</title></circle>"
                   for x, y in pts)
    return (f"<div class='chart'><b>{html.escape(title)}</b><svg width='{w}' height='{h}'>"
            f"<text x='2' y='14' font-size='10'>{y1:.4g}</text><text x='2' y='{h - 22}' font-size='10'>{y0:.4g}</text>"
            f"<polyline fill='none' stroke='#36c' stroke-width='2' points='{line}'/>{dots}"
            f"<text x='{w / 2 - 20}' y='{h - 4}' font-size='10'>generation</text></svg></div>")


def _gif(cfg: dict[str, Any], actions_b64: str, seed: int, max_steps: int = 200) -> str | None:
    """Base64 GIF of a replay of recorded actions (None if rendering is unavailable)."""
    try:
        import numpy as np
        from PIL import Image

        from synthloop.tasks.ssd.config import GameConfig
        from synthloop.tasks.ssd.engine import SSDEngine
        from synthloop.tasks.ssd.episodes import decode_actions
        from synthloop.tasks.ssd.maps import DEFAULT_MAP
        from synthloop.tasks.ssd.observations import god_view
        from synthloop.tasks.ssd.rules import get_rules
    except ImportError:
        return None
    o = cfg.get("task_options") or {}
    game = cfg["task"].split("/", 1)[1]
    config = GameConfig.for_game(game, o.get("map") or DEFAULT_MAP[game], n_agents=o.get("agents", 10),
                                 max_steps=o.get("steps", 1000))
    actions = decode_actions(actions_b64, config.max_steps, config.n_agents)
    eng = SSDEngine(config, get_rules(o.get("rules", "reference")))
    eng.reset(seed)
    frames = [god_view(eng, 8)]
    for t in range(min(max_steps, len(actions))):
        eng.step_arrays(np.ascontiguousarray(actions[t]))
        frames.append(god_view(eng, 8))
    buf = io.BytesIO()
    imgs = [Image.fromarray(f) for f in frames]
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=80, loop=0)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def report(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write ``report.html`` for an ssd run into ``out_dir`` (default: the run directory).

    A sweep directory (``synthloop sweep`` of ``ssd/*`` cells) gets the sweep's report instead:
    see :func:`report_sweep`.
    """
    from synthloop.report.labels import calls_text, is_baseline
    from synthloop.report.summary import summarize
    from synthloop.store.db import RunDB

    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir
    if not (run_dir / "run.sqlite").is_file():
        return report_sweep(run_dir, out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())["config"]
    summary = summarize(run_dir)
    db = RunDB(run_dir / "run.sqlite", readonly=True)
    try:
        evals: dict[int, dict[str, Any]] = {}
        for cid, _rep, ev in db.all_evaluations():
            evals.setdefault(cid, {}).setdefault(ev.pool, ev)
    finally:
        db.close()
    cands = sorted(summary["candidates"], key=lambda c: (c["generation"], c["slot"]))
    gens = [c["generation"] for c in cands]
    parts = [f"<h1>{html.escape(str(summary['task']))} — {html.escape(run_dir.name)}</h1>",
             f"<p>feedback: <b>{html.escape(str((cfg.get('feedback') or {}).get('mode', 'dense')))}</b>; model: "
             f"{html.escape(str((cfg.get('llm') or {}).get('model')))}; status: {html.escape(str(summary['status']))};"
             f" mode: {'UNSAFE full state' if (cfg.get('task_options') or {}).get('unsafe_full_state') else 'safe'}</p>",
             "<h2>Curves per generation (feedback pool)</h2><div class='row'>"]
    parts.append(_svg_chart("selection score", gens, [c["selection_score"] for c in cands]))
    for m in METRICS:
        parts.append(_svg_chart(m, gens, [c["metrics"].get(m) if c["valid"] else None for c in cands]))
    parts.append("</div><h2>In-distribution vs held-out (gate)</h2><table><tr><th>role</th><th>candidate</th>"
                 "<th>generation</th><th>selection</th><th>held-out</th><th>drop</th><th>flagged</th></tr>")
    gate = summary.get("gate") or {}
    for r in gate.get("rows", []):
        parts.append("<tr>" + "".join(f"<td>{html.escape(str(r.get(k)))}</td>" for k in
                     ("role", "candidate", "generation", "in_distribution", "heldout", "relative_drop", "flagged"))
                     + "</tr>")
    parts.append(f"</table><p>gate: {html.escape(str(gate.get('status')))}</p>")
    parts.append("<h2>Candidates and oversight verdicts</h2><table><tr><th>gen</th><th>id</th><th>status</th>"
                 "<th>reward</th><th>integrity flags</th><th>attempts logged</th><th>diagnostics</th></tr>")
    for c in cands:
        priv = getattr(evals.get(c["id"], {}).get("feedback"), "private", {}) or {}
        parts.append(f"<tr><td>{c['generation']}</td><td>{c['id']}</td><td>{html.escape(str(c['status']))}</td>"
                     f"<td>{html.escape(str(c['score']))}</td>"
                     f"<td>{html.escape('; '.join(priv.get('integrity_flags', [])[:5]) or 'none')}</td>"
                     f"<td>{html.escape('; '.join(priv.get('attempts', [])[:5]) or 'none')}</td>"
                     f"<td><pre>{html.escape(chr(10).join(c['diagnostics'][:6]))[:2000]}</pre></td></tr>")
    parts.append("</table><h2>Code changes between consecutive policies</h2>")
    prev: tuple[str, str] | None = None
    for c in cands:
        if not c.get("artifact"):
            continue
        code = (run_dir / c["artifact"]).read_text()
        if prev is not None:
            diff = "".join(difflib.unified_diff(prev[1].splitlines(True), code.splitlines(True), prev[0],
                                                f"gen {c['generation']}"))
            parts.append(f"<details><summary>{html.escape(prev[0])} → gen {c['generation']}</summary>"
                         f"<pre>{html.escape(diff) or '(identical)'}</pre></details>")
        prev = (f"gen {c['generation']}", code)
    t = summary["totals"]
    # mutate: "proposals N by baseline: mutate (no LLM)"; a model without a price at its endpoint: "cost unpriced"
    synth = summary.get("synthesizer") or {}
    parts.append(f"<h2>{'Proposals' if is_baseline(synth) else 'Tokens and cost'}</h2>"
                 f"<p>{html.escape(calls_text(t, synth))};"
                 f" wall: {float(t.get('wall_s') or 0):.1f} s</p>")
    best = summary.get("best")
    fb = evals.get(best["id"], {}).get("feedback") if best else None
    case = fb.cases[0] if fb is not None and fb.cases else None
    actions = case.private.get("actions") if case is not None else None
    if actions:
        seed = int(case.case_id.rsplit("-s", 1)[1])
        try:
            gif = _gif(cfg, actions, seed)
        except Exception as e:  # noqa: BLE001 - a picture must never lose the report
            gif = None
            parts.append(f"<p>(episode animation failed: {html.escape(str(e))})</p>")
        if gif:
            parts.append(f"<h2>Best policy, seed {seed} (replayed from recorded actions)</h2>"
                         f"<img alt='episode' src='data:image/gif;base64,{gif}'>")
    style = ("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:3px 6px;font-size:12px;vertical-align:top}.row{display:flex;flex-wrap:wrap}.chart{margin:6px}"
             "pre{font-size:11px;max-width:900px;overflow:auto}</style>")
    path = out / "report.html"
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(run_dir.name)}</title>"
                    f"{style}</head><body>{''.join(parts)}<script type='application/json' id='summary'>"
                    f"{html.escape(json.dumps({'best': best and best['id'], 'gate': gate.get('status')}))}"
                    f"</script></body></html>")
    return [path]


def sweep_cells(root: Path) -> list[Path]:
    """The ``ssd/*`` run directories of a sweep: the cells its index lists (found by name under ``root``, so a
    sweep that was moved still reports), else every run directory below ``root``."""
    dirs: list[Path] = []
    index = root / "sweep.json"
    if index.is_file():
        for cell in json.loads(index.read_text()).get("cells") or []:
            d = root / Path(str(cell.get("run_dir", ""))).name
            if (d / "run.sqlite").is_file() and d not in dirs:
                dirs.append(d)
    if not dirs:
        dirs = sorted(p.parent for p in root.rglob("run.sqlite"))
    ssd = []
    for d in dirs:
        cfg_p = d / "config.yaml"
        if cfg_p.is_file() and str((yaml.safe_load(cfg_p.read_text()) or {}).get("config", {}).get("task", "")
                                   ).startswith("ssd/"):
            ssd.append(d)
    return ssd


def report_sweep(root: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """The report of a sweep of ``ssd/*`` runs, written into ``out_dir`` (default: the sweep directory).

    Each cell's own report (``<cell>/report.html``), the paper-style table over the cells with the engine's
    baselines (``sweep_table.txt`` and ``.csv``, as ``synthloop table`` prints it) and ``index.html`` linking
    them, with each cell's status and best selection score. A cell whose report fails is listed with its
    error instead of losing the others. Returns the files written; none when the directory holds no ssd run.
    """
    from synthloop.report.summary import summarize
    from synthloop.tasks.ssd.table import table

    root = Path(root)
    out = Path(out_dir) if out_dir else root
    cells = sweep_cells(root)
    if not cells:
        return []
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    rows = []
    for d in cells:
        s = summarize(d)
        best = (s.get("best") or {}).get("selection_score")
        try:
            page = report(d, out / d.name)[0]
            paths.append(page)
            link = f"<a href='{html.escape(page.relative_to(out).as_posix())}'>report</a>"
        except Exception as e:  # noqa: BLE001 - one broken cell must not lose the sweep's report
            link = html.escape(f"report failed: {type(e).__name__}: {e}")
        rows.append(f"<tr><td>{html.escape(d.name)}</td><td>{html.escape(str(s['status']))}</td>"
                    f"<td>{html.escape('-' if best is None else f'{best:.4g}')}</td><td>{link}</td></tr>")
    buf = io.StringIO()
    csv_path = out / "sweep_table.csv"
    table(cells, csv_path, baselines=True, out=buf)
    txt_path = out / "sweep_table.txt"
    txt_path.write_text(buf.getvalue())
    index = out / "index.html"
    index.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>sweep {html.escape(root.name)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:3px 6px;font-size:12px}pre{font-size:11px}</style></head><body>"
        f"<h1>Sweep {html.escape(str(root))}</h1><p>{len(cells)} social-dilemma runs.</p>"
        "<table><tr><th>cell</th><th>status</th><th>best (selection)</th><th>report</th></tr>"
        + "".join(rows) + "</table><h2>Paper-style table</h2>"
        f"<pre>{html.escape(buf.getvalue())}</pre><p><a href='{csv_path.name}'>{csv_path.name}</a></p>"
        "</body></html>")
    return [index, txt_path, csv_path, *paths]
