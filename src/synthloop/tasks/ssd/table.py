"""The paper-style table (as in arXiv 2603.19453) from finished ``ssd/*`` runs, plus the engine's baselines.

One row per cell (game × feedback × model) and role (``final``: the last
iteration, the paper's policy; ``best``: best-so-far on the selection pool,
§8.2 #20): mean ± 95% CI over the repeats of efficiency, equality,
sustainability and peace on the feedback seeds (in-distribution, the paper's
protocol), the held-out reward, and the best repeat's efficiency. The
baselines of the engine issue are rows too, evaluated in both protocols
(self-play, and the reference script's protocol), so the LLM rows and the
baseline rows can be compared like for like (§8.2 #10). GEPA baseline runs
(``synthloop ssd gepa``, spec §5.3; ``method: gepa`` in their config.yaml) are
rows of their own, ``GEPA <model>``, with the single role ``best``: the best
prompt's policy, measured on the same pools as the LLM rows.

``main(argv)`` is the body of ``synthloop table RUNS... [--csv PATH] [--no-baselines]``.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

from synthloop.oversight.stats import mean_ci

METRICS = ("efficiency", "equality", "sustainability", "peace")
BASELINES = {"gathering": ("bfs", "cooperative", "exploitative", "random8"),
             "cleanup": ("collector", "threshold", "cleaner", "random")}
REFERENCE_PROTOCOL = {"gathering": "reference-mixed", "cleanup": "cleanup-script"}


def _load(run_dir: Path) -> dict[str, Any] | None:
    from synthloop.report.summary import summarize

    cfg_p = run_dir / "config.yaml"
    if not cfg_p.is_file() or not (run_dir / "run.sqlite").is_file():
        return None
    data = yaml.safe_load(cfg_p.read_text())
    cfg = data["config"]
    if not str(cfg.get("task", "")).startswith("ssd/"):
        return None
    return {"cfg": cfg, "summary": summarize(run_dir), "method": data.get("method") or "synthesis"}


def _role_row(summary: dict[str, Any], role: str) -> dict[str, Any] | None:
    cand = summary.get(role)
    if not cand or not cand.get("metrics"):
        return None
    held = next((r.get("heldout") for r in (summary.get("gate") or {}).get("rows", [])
                 if r.get("candidate") == cand["id"]), None)
    return {**{k: cand["metrics"].get(k) for k in METRICS}, "reward": cand.get("score"), "heldout_reward": held,
            "selection_reward": cand.get("selection_score")}


def llm_rows(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """One row per cell and role of the synthesis runs (a ``mutate`` run is a ``baseline: mutate`` row)."""
    from synthloop.report.labels import method_label

    cells: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for d in run_dirs:
        run = _load(Path(d))
        if run is None:
            continue
        cfg = run["cfg"]
        key = (cfg["task"].split("/", 1)[1], (cfg.get("feedback") or {}).get("mode", "dense"),
               (cfg.get("llm") or {}).get("model") or "?", run["method"])
        cells.setdefault(key, []).append(run["summary"])
    rows = []
    for (game, mode, model, method), sums in sorted(cells.items()):
        gepa = method == "gepa"
        for role in ("best",) if gepa else ("final", "best"):
            per = [r for r in (_role_row(s, role) for s in sums) if r]
            if not per:
                continue
            method_name = f"GEPA {model}" if gepa else method_label(model)  # mutate: "baseline: mutate", no LLM
            row: dict[str, Any] = {"game": game, "method": method_name, "feedback": mode,
                                   "role": role, "protocol": "self-play", "n": len(per)}
            for k in (*METRICS, "reward", "heldout_reward"):
                row[k], row[f"{k}_ci"] = mean_ci([float(r[k]) for r in per if r.get(k) is not None])
            row["best_efficiency"] = max((r["efficiency"] for r in per if r.get("efficiency") is not None),
                                         default=math.nan)
            rows.append(row)
    return rows


def baseline_rows(game: str, agents: int, steps: int, map_name: str | None, seeds: list[int],
                  rules: str = "reference") -> list[dict[str, Any]]:
    """The engine's baselines in self-play and in the reference protocol (mean ± CI over episodes)."""
    from synthloop.tasks.ssd.evaluate import DEFAULT_SEEDS, evaluate_policy

    rows = []
    for protocol in ("self-play", REFERENCE_PROTOCOL[game]):
        use = seeds if protocol == "self-play" else DEFAULT_SEEDS[protocol]
        for name in BASELINES[game]:
            res = evaluate_policy(game, f"builtin:{name}", agents=agents, map=map_name, seeds=use,
                                  protocol=protocol, rules=rules, steps=steps)
            eps = [e for e in res["episodes"] if "error" not in e]
            row: dict[str, Any] = {"game": game, "method": f"baseline {name}", "feedback": "-", "role": "-",
                                   "protocol": protocol, "n": len(eps)}
            for k in METRICS:
                row[k], row[f"{k}_ci"] = mean_ci([float(e[k]) for e in eps])
            row["reward"], row["reward_ci"] = mean_ci([statistics.fmean(e["returns"]) for e in eps])
            row["heldout_reward"], row["heldout_reward_ci"] = math.nan, math.nan
            row["best_efficiency"] = max((float(e["efficiency"]) for e in eps), default=math.nan)
            rows.append(row)
    return rows


def table(run_dirs: list[str | Path], csv_path: str | Path | None = None, baselines: bool = True,
          out: Any = None) -> list[dict[str, Any]]:
    """Print the table for ``run_dirs`` (and the baselines of the games they cover); write CSV if asked."""
    out = out or sys.stdout
    dirs = [Path(d) for d in run_dirs]
    rows = llm_rows(dirs)
    if baselines:
        seen: set[tuple[Any, ...]] = set()
        for d in dirs:
            run = _load(d)
            if run is None:
                continue
            cfg, o = run["cfg"], run["cfg"].get("task_options") or {}
            key = (cfg["task"], o.get("agents", 10), o.get("steps", 1000), o.get("map"), tuple(o.get("feedback_seeds",
                   [0, 1, 2, 3, 4])), o.get("rules", "reference"))
            if key in seen:
                continue
            seen.add(key)
            rows += baseline_rows(key[0].split("/", 1)[1], key[1], key[2], key[3], list(key[4]), key[5])
    _print(rows, out)
    if csv_path:
        cols = ["game", "method", "feedback", "role", "protocol", "n"]
        for k in (*METRICS, "reward", "heldout_reward"):
            cols += [k, f"{k}_ci"]
        cols.append("best_efficiency")
        with open(csv_path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    return rows


def _fmt(m: float, ci: float, digits: int) -> str:
    if m is None or math.isnan(m):
        return "-"
    return f"{m:.{digits}f}±{ci:.{digits}f}" if ci else f"{m:.{digits}f}"


def _print(rows: list[dict[str, Any]], out: Any) -> None:
    head = ["game", "method", "feedback", "role", "protocol", "n", "U (eff.)", "E (eq.)", "S (sust.)", "P (peace)",
            "held-out r", "best U"]
    body = [[r["game"], r["method"], r["feedback"], r["role"], r["protocol"], str(r["n"]),
             _fmt(r["efficiency"], r["efficiency_ci"], 3), _fmt(r["equality"], r["equality_ci"], 3),
             _fmt(r["sustainability"], r["sustainability_ci"], 1), _fmt(r["peace"], r["peace_ci"], 2),
             _fmt(r["heldout_reward"], r["heldout_reward_ci"], 1), _fmt(r["best_efficiency"], 0.0, 3)] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    for line in [head, ["-" * w for w in widths], *body]:
        print("  ".join(x.ljust(w) for x, w in zip(line, widths)), file=out)
    print("mean ± 95% CI over repeats (synthesis runs) or episodes (built-in policies); U, E, S, P on the feedback seeds;"
          " held-out r = mean per-agent return on the held-out seeds; best U = best repeat/episode.", file=out)


def main(argv: list[str] | None = None) -> int:
    from synthloop.cli_argparse import OneLineParser

    ap = OneLineParser(prog="synthloop table", description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="run directories (or sweep directories holding them)")
    ap.add_argument("--csv", default=None, help="also write the table as CSV")
    ap.add_argument("--no-baselines", action="store_true")
    a = ap.parse_args(argv)
    dirs: list[Path] = []
    for r in a.runs:
        p = Path(r)
        dirs += [p] if (p / "run.sqlite").is_file() else sorted(x.parent for x in p.rglob("run.sqlite"))
    if not dirs:
        print(f"error: no run directories found in {', '.join(a.runs)}", file=sys.stderr)
        return 2
    table(dirs, a.csv, baselines=not a.no_baselines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
