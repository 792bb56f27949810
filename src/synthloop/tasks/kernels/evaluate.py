"""Evaluate a kernel source on a size ladder: the trusted side of the trust boundary.

Flow: static check -> build (CPU: cached ``cc``; CUDA: NVRTC inside the worker) -> one worker child runs the
sizes in order (restarted after the size that crashed or hung, so every size gets a diagnosis) -> this
process loads the dumps and judges them against fresh references, checks input mutation and guard zones,
and computes the roofline fitness.

Why a child even inside the engine's sandbox: the candidate is native code. Comparing outputs in the
process that ran it would let the kernel patch the comparison (or the reference) in memory, so outputs
travel back as files and every verdict is computed here, in a process the candidate never ran in.
Residual risk, documented: timings are measured in the child (a kernel that rewrites the child's timing
samples would need tricks the static checker forbids: clocks, dlsym, the Python C-API).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.tasks.kernels import refcache
from synthloop.tasks.kernels.antihack import static_check
from synthloop.tasks.kernels.catalog import get_task
from synthloop.tasks.kernels.ceilings import Ceilings, get_ceilings
from synthloop.tasks.kernels.fitness import gmean_score, size_fitness
from synthloop.tasks.kernels.runner import check_seeds, check_variant
from synthloop.tasks.kernels.spec import CheckResult, KernelTask, Size
from synthloop.tasks.kernels.worker import RESTART_EXIT


@dataclass
class EvalConfig:
    backend: str = "cpu"
    warmup: int = 3
    measure: int = 10
    variants: int = 2
    timeout_s: float = 60.0  # per size, covering all its repetitions
    threads: int | None = None
    checks: tuple[str, ...] = ("first", "last", "repeat")  # which runs are dumped and judged
    seed_offset: int = 0  # shifts the input variants (the selection pool uses fresh seeds)
    device_options: dict[str, Any] = field(default_factory=dict)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def run_worker(task: KernelTask, module: str, sizes: list[Size], cfg: EvalConfig, out_dir: Path,
               mode: str = "measure", module_b: str | None = None, pairs: int = 0) -> list[dict[str, Any]]:
    """Run the worker over all sizes; returns one raw record per size (with ``error_kind`` on failure)."""
    from synthloop.tasks.kernels.cpu_backend import worker_env

    records: list[dict[str, Any] | None] = [None] * len(sizes)
    start = 0
    while start < len(sizes):
        req = {"mode": mode, "task": task.name, "backend": cfg.backend, "module": module, "module_b": module_b,
               "sizes": [s.to_dict() for s in sizes], "start": start, "warmup": cfg.warmup,
               "measure": cfg.measure, "variants": cfg.variants, "pairs": pairs, "out_dir": str(out_dir),
               "checks": list(cfg.checks), "seed_offset": cfg.seed_offset,
               "device_options": cfg.device_options}
        proc = subprocess.Popen([sys.executable, "-m", "synthloop.tasks.kernels.worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=worker_env(cfg.threads),
                                start_new_session=True)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(req).encode())
        proc.stdin.close()
        current = start
        t_size = time.monotonic()
        stop_reason: dict[str, Any] | None = None
        while True:
            while current < len(sizes) and (out_dir / f"size_{current}.json").exists():
                records[current] = json.loads((out_dir / f"size_{current}.json").read_text())
                current += 1
                t_size = time.monotonic()
            if (out_dir / "setup.json").exists():
                setup = json.loads((out_dir / "setup.json").read_text())
                proc.wait()
                return [dict(setup, label=s.label) for s in sizes]
            rc = proc.poll()
            if rc == RESTART_EXIT:
                while current < len(sizes) and (out_dir / f"size_{current}.json").exists():
                    records[current] = json.loads((out_dir / f"size_{current}.json").read_text())
                    current += 1
                stop_reason = {"restart": True}
                break
            if rc is not None:
                if current < len(sizes) and not (out_dir / f"size_{current}.json").exists():
                    err = proc.stderr.read().decode(errors="replace")[-1500:] if proc.stderr else ""
                    kind = "crash" if rc < 0 else "exit"
                    what = f"killed by signal {signal.Signals(-rc).name}" if rc < 0 else f"exited with status {rc}"
                    stop_reason = {"error_kind": kind, "error": f"worker {what} at this size. {err}".strip()}
                break
            if time.monotonic() - t_size > cfg.timeout_s:
                _kill_group(proc)
                stop_reason = {"error_kind": "timeout",
                               "error": f"killed after {cfg.timeout_s:.1f} s without finishing this size"}
                break
            time.sleep(0.02)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
        if stop_reason is None:
            break
        if stop_reason.get("restart"):
            start = current
            continue
        records[current] = dict(stop_reason, index=current, label=sizes[current].label)
        start = current + 1
    return [r if r is not None else {"error_kind": "missing", "error": "no result", "label": s.label}
            for r, s in zip(records, sizes)]


def judge_size(task: KernelTask, p: Size, rec: dict[str, Any], dumps: dict[str, np.ndarray],
               ceilings: Ceilings | None, cfg: EvalConfig) -> dict[str, Any]:
    """Per-size verdict from a worker record and its dumped buffers (the trusted comparison).

    Which input seed each check run used is recomputed here from ``cfg``, never read from the record."""
    out: dict[str, Any] = {"label": p.label, "params": dict(p.params), "correct": False}
    if "error_kind" in rec:
        out.update(error_kind=rec["error_kind"], error=rec.get("error", ""))
        return out
    out["times_s"] = rec["times_s"]
    out["warmup_s"] = rec.get("warmup_s", [])
    out["info"] = rec.get("info", {})
    problems: list[str] = []
    if rec.get("guards_corrupted"):
        problems.append(f"out_of_bounds_write: guard zone overwritten around {', '.join(rec['guards_corrupted'])}")
    worst: CheckResult | None = None
    outputs = task.outputs(p)
    in_names = [b.name for b in task.buffers(p) if b.role == "in"]
    seeds = check_seeds(task, cfg.variants, cfg.seed_offset)
    if set(rec.get("checks", {})) != set(cfg.checks if cfg.measure > 1 else [c for c in cfg.checks if c != "last"]):
        problems.append(f"missing check runs: got {sorted(rec.get('checks', {}))}, want {sorted(cfg.checks)}")
    for check in rec.get("checks", {}):
        variant = check_variant(check, cfg.measure, cfg.variants)
        meta = {"variant": variant}
        seed = seeds[variant]
        inputs, reference = refcache.get(task, p, seed)
        for name in in_names:
            got = dumps.get(f"{check}__{name}")
            if got is None or got.tobytes() != np.ascontiguousarray(inputs[name]).tobytes():
                problems.append(f"input_mutated: read-only buffer {name!r} changed ({check} run)")
        if any(f"{check}__{buf}" not in dumps for buf in outputs.values()):
            problems.append(f"missing_output: the {check} run returned no output dump")
            continue
        got_out = {logical: dumps[f"{check}__{buf}"] for logical, buf in outputs.items()}
        res = task.check(p, got_out, reference, inputs)
        res.detail["run"] = check
        res.detail["variant"] = meta["variant"]
        if worst is None or (not res.ok and worst.ok):
            worst = res
        if not res.ok:
            problems.append(f"{check} run (input variant {meta['variant']}): {res.describe()}")
    if worst is not None:
        out["check"] = worst.to_dict()
    problems = list(dict.fromkeys(problems))
    if problems:
        kinds = [pr.split(":")[0] if pr.split(":")[0] in ("out_of_bounds_write", "input_mutated") else "wrong"
                 for pr in problems]
        out.update(error_kind=kinds[0], error="; ".join(problems))
        return out
    out["correct"] = True
    if ceilings is not None and out["times_s"]:
        out["fitness"] = size_fitness(task, p, out["times_s"], ceilings).to_dict()
    return out


def _load_dumps(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def evaluate_kernel(task_name: str, source: str, cfg: EvalConfig | None = None, *, sizes: list[Size] | None = None,
                    split: str = "in", ceilings: Ceilings | None = None, use_ceilings: bool = True) -> dict[str, Any]:
    """Evaluate one kernel source; returns a JSON-ready result (see docs of the fields in the code)."""
    cfg = cfg or EvalConfig()
    task = get_task(task_name)
    sizes = sizes if sizes is not None else task.sizes(cfg.backend, split)
    result: dict[str, Any] = {"task": task.name, "backend": cfg.backend, "compile_ok": False, "correct": False,
                              "score": 0.0, "sizes": [], "flags": [], "warnings": []}
    report = static_check(source, cfg.backend, [e.name for e in task.entries()])
    result["warnings"] = report.warnings
    if not report.ok:
        result.update(error_kind="static_check", fail_reason="; ".join(report.errors))
        return result
    module = source
    if cfg.backend == "cpu":
        from synthloop.tasks.kernels.cpu_backend import compile_c

        built = compile_c(source)
        result["compile_log"] = built.log
        result["compile_s"] = built.seconds
        if not built.ok or built.path is None:
            result.update(error_kind="compile", fail_reason=f"COMPILE FAILED:\n{built.log}")
            return result
        module = built.path
    if use_ceilings and ceilings is None:
        ceilings = get_ceilings(cfg.backend, threads=cfg.threads)
    with tempfile.TemporaryDirectory(prefix="synthloop-kern-") as tmp:
        records = run_worker(task, module, sizes, cfg, Path(tmp))
        if records and records[0].get("error_kind") == "compile":
            result.update(error_kind="compile", fail_reason=f"COMPILE FAILED:\n{records[0].get('error', '')}")
            return result
        result["compile_ok"] = True
        for i, (p, rec) in enumerate(zip(sizes, records)):
            result["sizes"].append(judge_size(task, p, rec, _load_dumps(Path(tmp) / f"size_{i}.npz"), ceilings, cfg))
    return finish(result, ceilings)


def finish(result: dict[str, Any], ceilings: Ceilings | None) -> dict[str, Any]:
    """Fill in correctness, score, flags and the fail reason from the per-size rows."""
    rows = result["sizes"]
    result["correct"] = bool(rows) and all(r["correct"] for r in rows)
    fracs = [r["fitness"]["fraction"] if r.get("fitness") else None for r in rows]
    result["score"] = gmean_score(fracs) if result["correct"] and ceilings is not None else 0.0
    flags = [f"implausible: {r['label']} at {r['fitness']['raw_fraction']:.2f}x the attainable ceiling"
             for r in rows if r.get("fitness", {}).get("implausible")]
    result["flags"] = flags
    bad = [r for r in rows if not r["correct"]]
    if bad:
        result["error_kind"] = bad[0].get("error_kind", "wrong")
        result["fail_reason"] = "; ".join(f"{r['label']}: {r.get('error', '')}" for r in bad)
    if ceilings is not None:
        result["ceilings_machine"] = ceilings.machine
    return result


def _spread(times: Any) -> str:
    """`` (IQR +-x% of n runs)``: how noisy the median is, so the model can tell a real change from noise."""
    if not isinstance(times, list) or len(times) < 3:
        return ""
    q1, med, q3 = np.percentile(np.asarray(times, dtype=np.float64), [25, 50, 75])
    return f" (IQR +-{50 * (q3 - q1) / med:.1f}% of {len(times)} runs)" if med > 0 else ""


def format_result(result: dict[str, Any]) -> str:
    """The feedback packet: one line per size, then the score (what a prompt may show)."""
    if result.get("error_kind") in ("compile", "static_check"):
        return result.get("fail_reason", "")
    lines = []
    for r in result["sizes"]:
        if r["correct"] and r.get("fitness"):
            f = r["fitness"]
            lines.append(f"{r['label']}: correct, {f['t_median_s'] * 1e3:.3f} ms{_spread(r.get('times_s'))}, "
                         f"{f['achieved']:.1f} {f['unit']} "
                         f"({100 * f['fraction']:.1f}% of the {f['ceiling']:.1f} {f['unit']} attainable, "
                         f"{f['bound']}-bound)")
        elif r["correct"]:
            lines.append(f"{r['label']}: correct")
        else:
            lines.append(f"{r['label']}: INCORRECT ({r.get('error_kind')}): {r.get('error', '')}")
    lines.append(f"score (gmean of fraction of attainable): {result['score']:.4f}")
    return "\n".join(lines)


def time_interleaved(task_name: str, incumbent: str, candidate: str, cfg: EvalConfig | None = None, *,
                     sizes: list[Size] | None = None, pairs: int = 10) -> dict[str, tuple[list[float], list[float]]]:
    """Interleaved timings of two (already judged) kernels in one worker: ``{label: (inc, cand)}``.

    Feed the result to :func:`synthloop.tasks.kernels.promotion.decide`. Raises ``RuntimeError`` when
    either kernel fails to build or run (judge correctness with :func:`evaluate_kernel` first).
    """
    cfg = cfg or EvalConfig()
    task = get_task(task_name)
    sizes = sizes if sizes is not None else task.sizes(cfg.backend, "in")
    modules = []
    for src in (incumbent, candidate):
        if cfg.backend == "cpu":
            from synthloop.tasks.kernels.cpu_backend import compile_c

            built = compile_c(src)
            if not built.ok or built.path is None:
                raise RuntimeError(f"build failed: {built.log}")
            modules.append(built.path)
        else:
            modules.append(src)
    with tempfile.TemporaryDirectory(prefix="synthloop-ab-") as tmp:
        records = run_worker(task, modules[0], sizes, cfg, Path(tmp), mode="interleave", module_b=modules[1],
                             pairs=pairs)
    out: dict[str, tuple[list[float], list[float]]] = {}
    for p, rec in zip(sizes, records):
        if "error_kind" in rec:
            raise RuntimeError(f"{p.label}: {rec['error_kind']}: {rec.get('error', '')}")
        out[p.label] = (rec["times_a"], rec["times_b"])
    return out
