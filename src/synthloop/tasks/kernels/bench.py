"""``synthloop bench kernels``: measured ceilings, then every seed kernel on its ladders.

For each task it reports, per size, correctness, median time, the achieved rate, the fraction of the
attainable ceiling, and the task's score (geometric mean) on the in-distribution and held-out ladders.
Like every ``synthloop bench``, the figures are one JSON document on stdout (for scripts and pipes); the
readable table streams to stderr while it runs, so a long benchmark shows its progress. One task's failure
never stops the others: the error is recorded and the run goes on.

Importable without pydantic (the GPU check script runs it on machines with only numpy/numba/cupy).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import traceback
from typing import Any

from synthloop.cli_argparse import OneLineParser
from synthloop.tasks.kernels.catalog import TASK_NAMES, get_task
from synthloop.tasks.kernels.ceilings import Ceilings, get_ceilings
from synthloop.tasks.kernels.evaluate import EvalConfig, evaluate_kernel


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog="synthloop bench kernels", description="Measured ceilings, then every seed kernel on"
                       " its ladders: the figures as JSON on stdout, a readable table on stderr as it runs.")
    ap.add_argument("--backend", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--tasks", nargs="*", default=list(TASK_NAMES), help="subset of tasks (default: all twelve)")
    ap.add_argument("--split", choices=("in", "held", "all"), default="all")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--measure", type=int, default=10)
    ap.add_argument("--variants", type=int, default=2, help="input variants alternated across repetitions")
    ap.add_argument("--checks", nargs="+", default=["first", "last", "repeat"],
                    choices=("first", "last", "repeat"), help="check runs to dump and judge")
    ap.add_argument("--timeout", type=float, default=None, help="per-size worker timeout in seconds")
    ap.add_argument("--threads", type=int, default=None, help="OpenMP threads (cpu; default: all allowed)")
    ap.add_argument("--refresh-ceilings", action="store_true", help="re-measure the machine's ceilings")
    ap.add_argument("--budget-s", type=float, default=None, help="skip tasks that would start after this")
    ap.add_argument("--json", action="store_true", help="no table on stderr: only the JSON document on stdout")
    ap.add_argument("--json-out", default=None, help="also write the JSON document to this path")
    return ap


def _fmt_row(task: str, split: str, row: dict[str, Any]) -> str:
    if row.get("correct") and row.get("fitness"):
        f = row["fitness"]
        return (f"  {task:9s} {split:4s} {row['label']:>18s}  ok    {f['t_median_s'] * 1e3:10.3f} ms "
                f"{f['achieved']:10.4g} {f['unit']:8s} {100 * f['fraction']:6.2f}% of {f['ceiling']:9.4g}"
                f" ({f['bound'][:2]}){'  IMPLAUSIBLE' if f['implausible'] else ''}")
    return f"  {task:9s} {split:4s} {row['label']:>18s}  FAIL  {row.get('error_kind')}: {str(row.get('error', ''))[:160]}"


def run_bench(args: argparse.Namespace, out: Any = None) -> dict[str, Any]:
    """Measure; the table goes to ``out`` (stderr by default: stdout carries the JSON document)."""
    out = out or sys.stderr
    t_start = time.monotonic()
    doc: dict[str, Any] = {"backend": args.backend, "tasks": {}, "ceilings": None}
    if args.backend == "cuda":
        from synthloop.tasks.kernels.cuda_backend import gpu_available

        if importlib.util.find_spec("cupy") is None:
            doc["error"] = 'the cuda backend needs cupy, which is not installed: pip install -e ".[cuda]"'
            return doc
        if not gpu_available():
            doc["error"] = "no CUDA device available (cupy is installed)"
            return doc
    ceilings: Ceilings = get_ceilings(args.backend, threads=args.threads, refresh=args.refresh_ceilings)
    doc["ceilings"] = ceilings.to_dict()
    if not args.json:
        print("\n".join(ceilings.summary_lines()), file=out, flush=True)
        print(f"\n  {'task':9s} {'set':4s} {'size':>18s}  check {'time':>13s} {'achieved':>19s} "
              f"{'fraction of attainable':>24s}", file=out, flush=True)
    timeout = args.timeout or (120.0 if args.backend == "cuda" else 60.0)
    cfg = EvalConfig(backend=args.backend, warmup=args.warmup, measure=args.measure, variants=args.variants,
                     timeout_s=timeout, threads=args.threads, checks=tuple(args.checks))
    splits = ("in", "held") if args.split == "all" else (args.split,)
    for name in args.tasks:
        entry: dict[str, Any] = {}
        doc["tasks"][name] = entry
        if args.budget_s is not None and time.monotonic() - t_start > args.budget_s:
            entry["skipped"] = f"time budget of {args.budget_s:.0f} s spent"
            if not args.json:
                print(f"  {name:9s} skipped: {entry['skipped']}", file=out, flush=True)
            continue
        t0 = time.monotonic()
        try:
            task = get_task(name)
            src = task.seed_source(args.backend)
            for split in splits:
                res = evaluate_kernel(name, src, cfg, split=split, ceilings=ceilings)
                entry[split] = res
                if not args.json:
                    if res.get("error_kind") in ("compile", "static_check"):
                        print(f"  {name:9s} {split:4s} {res['error_kind']}: {res.get('fail_reason', '')[:400]}",
                              file=out, flush=True)
                    for row in res["sizes"]:
                        print(_fmt_row(name, split, row), file=out, flush=True)
                    print(f"  {name:9s} {split:4s} {'score':>18s}  {res['score']:.4f}"
                          f"{'  FLAGS: ' + '; '.join(res['flags']) if res['flags'] else ''}", file=out, flush=True)
        except Exception as e:  # one task's failure must not stop the others
            entry["error"] = f"{type(e).__name__}: {e}"
            entry["traceback"] = traceback.format_exc(limit=5)
            if not args.json:
                print(f"  {name:9s} ERROR {entry['error']} (traceback in the JSON document)", file=out, flush=True)
        entry["wall_s"] = time.monotonic() - t0
    doc["wall_s"] = time.monotonic() - t_start
    return doc


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``synthloop bench kernels`` and benchmarks/bench_kernels.py (0 = every seed passed)."""
    args = build_parser().parse_args(argv)
    doc = run_bench(args)
    text = json.dumps(doc, indent=1, default=str)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(text)
    print(text)
    if "error" in doc:
        print(f"error: bench kernels: {doc['error']}", file=sys.stderr)
        return 2
    ok = all(all(v.get("correct") for k, v in e.items() if k in ("in", "held")) and "error" not in e
             for e in doc["tasks"].values() if "skipped" not in e)
    if not args.json:
        print(f"\n{'all seeds correct' if ok else 'SOME SEEDS FAILED'}; wall {doc['wall_s']:.1f} s", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
