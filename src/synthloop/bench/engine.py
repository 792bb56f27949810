"""Engine overhead per iteration, against a zero-latency fake LLM and a trivial evaluator.

What is measured: a full `one_plus_one` run on `examples/constant` with the
real OpenAI SDK talking to a fake OpenAI-compatible server on 127.0.0.1 that
answers at once with a SEARCH/REPLACE edit of the tunable constant, full
sandboxing on (every candidate in a fresh, isolated process), the run
database and artifacts written as in any run. The LLM takes ~0 ms and the
evaluator ~0.05 ms, so the time per iteration is the framework's overhead.
Every run, ours and OpenEvolve's, starts in a fresh interpreter.

* ``steady_ms``: (last LLM request - first) / (requests - 1), from the
  server's own timestamps (excludes start-up and the final report);
* ``llm_call_ms``: mean time of the SDK's ``chat.completions.create`` call,
  timed around that call on both sides (ours: the async client; OpenEvolve's:
  its sync client); ``overhead_ms`` is ``steady_ms`` minus it at concurrency 1
  or with 1 worker, where LLM calls are serial, and all of ``steady_ms`` above;
  ``llm_call_recorded_ms`` is what our run recorded (plus retry wrapper and
  parsing);
* ``all_in_ms``: wall time of the whole run / iterations;
* ``windows_ms``: steady time per iteration in consecutive windows, to show
  that the cost stays flat as the run grows;
* ``cpu_ms``: CPU time per iteration (start-up and report included) of each
  part: our engine process, the sandbox tree (zygote, supervisors and every
  candidate process), OpenEvolve's process tree, and the fake LLM server. On a
  machine with few cores the sum, not the wall time of one part, is what
  bounds the time per iteration.

If OpenEvolve is installed (``openevolve-run`` on PATH, or ``--openevolve-bin``)
it runs on the same fake server and the same trivial problem side by side, with
1 and 4 workers (its ``parallel_evaluations``; our concurrency c is compared
with c workers, else with its 1-worker default), and the ratios are printed;
otherwise the ratios are against the figures measured for OpenEvolve 0.4.0 on
this machine kind (shared/specs/openevolve_overhead.md), labelled as such.

The figures are one JSON document on stdout; while the runs go, a progress bar per run (LLM requests
served so far, from the fake server's own count) and each run's row as it finishes go to stderr.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from synthloop.cli_argparse import OneLineParser

TUNABLE = re.compile(r"^(?P<indent>[ \t]*)x = (?P<val>[-+0-9.eE]+)  # tunable[ \t]*$", re.MULTILINE)
# OpenEvolve's diff prompt puts the parent in the fenced block right after "# Current Program"; the same
# prompt also shows other programs (evolution history, top programs) and a "# Current Program Information"
# header before it, so the edit must come from that block or it will not apply to the parent.
CURRENT_PROGRAM = re.compile(r"^# Current Program\n```[a-zA-Z0-9_+-]*\n(.*?)```", re.MULTILINE | re.DOTALL)

# OpenEvolve 0.4.0, default config (1 worker), zero-latency fake LLM, this machine kind (2 vCPU):
# steady ms per iteration by run length, from shared/specs/openevolve_overhead.md §1 and §4.
OPENEVOLVE_DOCUMENTED = {100: 6.1, 300: 8.0, 1000: 20.2, 3000: 44.8}


def make_responder(seed: int = 1234):
    """An LLM that changes the parent's tunable constant to a fresh random value with a SEARCH/REPLACE edit."""
    rng = random.Random(seed)

    def respond(req: dict[str, Any]) -> str:
        text = "\n".join(m.get("content", "") for m in req.get("messages", []) if m.get("role") == "user")
        block = CURRENT_PROGRAM.search(text)  # OpenEvolve's prompt
        m = TUNABLE.search(block.group(1) if block else text)  # ours: the parent's code comes first
        if m is None:
            return "no program found"
        new = f"{m.group('indent')}x = {rng.random():.9f}  # tunable"
        return f"Change the constant.\n\n<<<<<<< SEARCH\n{m.group(0)}\n=======\n{new}\n>>>>>>> REPLACE\n"

    return respond


def _windows(ts: list[float], n: int) -> list[dict[str, float]]:
    out = []
    if len(ts) < 2:
        return out
    size = max(n // 10, 50)
    for a in range(0, len(ts) - 1, size):
        b = min(a + size, len(ts) - 1)
        if b > a:
            out.append({"from": a, "to": b, "ms": 1000 * (ts[b] - ts[a]) / (b - a)})
    return out


def _time_sdk_calls(runner: Any, seconds: list[float]) -> Any:
    """Make ``runner.make_synthesizer`` time each SDK ``chat.completions.create`` into ``seconds``.

    The LLM time subtracted from ours is then the same as OpenEvolve's (the SDK call alone, not our retry
    wrapper or parsing). The SDK is patched on the client once it exists: importing it earlier would put it
    into the sandbox's forked image, which a real run does not have. Returns the original to restore.
    """
    make = runner.make_synthesizer

    def make_timed(*a: Any, **k: Any) -> Any:
        synth = make(*a, **k)
        build = synth._make_client

        def make_client() -> Any:
            client = build()
            completions = client.chat.completions
            create = completions.create

            async def timed(*ca: Any, **ck: Any) -> Any:
                t = time.perf_counter()
                try:
                    return await create(*ca, **ck)
                finally:
                    seconds.append(time.perf_counter() - t)

            completions.create = timed
            return client

        synth._make_client = make_client
        return synth

    runner.make_synthesizer = make_timed
    return make


def run_synthloop(iterations: int, concurrency: int, base_url: str, workdir: Path) -> dict[str, Any]:
    import synthloop.runner as runner
    from synthloop.config import build_config

    cfg = build_config({
        "task": "examples/constant",
        "llm": {"model": "openai/fake-model", "base_url": base_url, "seed": None},
        "search": {"strategy": "one_plus_one", "iterations": iterations, "concurrency": concurrency},
        "execution": {"workers": max(2, concurrency)},
        "out": str(workdir / f"run-c{concurrency}-n{iterations}"),
    })
    os.environ.setdefault("OPENAI_API_KEY", "sk-fake-benchmark-key")
    sdk_s: list[float] = []
    make = _time_sdk_calls(runner, sdk_s)
    try:
        t0, c0 = time.perf_counter(), os.times()
        run_dir = runner.prepare_run(cfg, announce=lambda s: None)
        summary = runner.execute_run(run_dir)  # closes the executor: the sandbox tree is reaped, its CPU counted
        wall, c1 = time.perf_counter() - t0, os.times()
    finally:
        runner.make_synthesizer = make
    import sqlite3

    con = sqlite3.connect(run_dir / "run.sqlite")
    # the steady window starts at the first request: leave out the first call (it also opens the connection)
    (lat,) = con.execute("SELECT AVG(latency_s) FROM (SELECT latency_s FROM llm_calls WHERE error IS NULL"
                         " ORDER BY id LIMIT -1 OFFSET 1)").fetchone()
    con.close()
    sdk = sdk_s[1:]
    return {"wall_s": wall, "summary": summary, "llm_ms": 1000 * statistics.fmean(sdk) if sdk else 0.0,
            "llm_recorded_ms": 1000 * (lat or 0.0),
            "cpu_s": {"engine": c1.user + c1.system - c0.user - c0.system,
                      "sandbox": c1.children_user + c1.children_system - c0.children_user - c0.children_system}}


def in_fresh_process(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a new interpreter, as a ``synthloop run`` would be.

    The local executor forks its sandbox from the engine's process, so every candidate's fork, exit and
    copy-on-write faults cost in proportion to that process's memory. Runs one after another in this
    process would inherit what the earlier ones left on its heap (the sandbox CPU per candidate rose
    from 10.6 to 15.4 ms over one benchmark's runs); OpenEvolve's runs get a fresh process too.
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


SITECUSTOMIZE = """
import os, time
_path = os.environ.get("SYNTHLOOP_BENCH_LLM_TIMES")
if _path:
    try:
        import openai.resources.chat.completions as _m
        _orig = _m.Completions.create
        def _timed(self, *a, **k):  # OpenEvolve calls the LLM in worker processes that die by signal:
            t = time.perf_counter()  # append each timing at once instead of at exit
            try:
                return _orig(self, *a, **k)
            finally:
                _fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                os.write(_fd, b"%f\\n" % (time.perf_counter() - t))
                os.close(_fd)
        _m.Completions.create = _timed
    except Exception:
        pass
"""


def openevolve_failed_iterations(log_dir: Path) -> int:
    """Iterations OpenEvolve logged as failed (e.g. an edit that did not apply): they skip evaluation and the
    database, so a baseline full of them would look cheaper than it is."""
    pattern = re.compile(r" - WARNING - Iteration \d+ error: ")
    return sum(len(pattern.findall(f.read_text(errors="replace"))) for f in sorted(log_dir.glob("*.log")))


def run_openevolve(binary: str, iterations: int, base_url: str, workdir: Path, workers: int = 1) -> dict[str, float]:
    prob = workdir / "oe_problem"
    prob.mkdir(exist_ok=True)
    (prob / "initial_program.py").write_text(
        "# EVOLVE-BLOCK-START\ndef value():\n    x = 0.100000000  # tunable\n    return x\n# EVOLVE-BLOCK-END\n\n\n"
        "def run():\n    return value()\n")
    (prob / "evaluator.py").write_text(
        "import importlib.util\n\ndef evaluate(program_path):\n"
        "    spec = importlib.util.spec_from_file_location('candidate', program_path)\n"
        "    mod = importlib.util.module_from_spec(spec)\n    spec.loader.exec_module(mod)\n"
        "    return {'combined_score': float(mod.run())}\n")
    (prob / "config.yaml").write_text(
        f'llm:\n  api_base: "{base_url}"\n  api_key: "fake-key"\n  models:\n    - name: "fake-model"\n'
        "      weight: 1.0\n" + (f"evaluator:\n  parallel_evaluations: {workers}\n" if workers > 1 else ""))
    hook = workdir / "oe_hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    out = workdir / f"oe_out_w{workers}_n{iterations}"
    times = workdir / f"oe_llm_times_w{workers}_n{iterations}.txt"
    env = {**os.environ, "PYTHONPATH": str(hook), "SYNTHLOOP_BENCH_LLM_TIMES": str(times)}
    t0, c0 = time.perf_counter(), os.times()
    subprocess.run([binary, str(prob / "initial_program.py"), str(prob / "evaluator.py"), "--config",
                    str(prob / "config.yaml"), "--iterations", str(iterations), "--output", str(out)],
                   check=True, capture_output=True, timeout=1800, env=env)
    wall, c1 = time.perf_counter() - t0, os.times()
    lat = [float(x) for x in times.read_text().split()][1:] if times.exists() else []  # as for ours: not the first
    # an iteration whose edit did not apply skips evaluation and the database: it must not pass for a cheap one
    failed = openevolve_failed_iterations(out / "logs")
    return {"wall_s": wall, "llm_ms": 1000 * statistics.fmean(lat) if lat else float("nan"), "failed": failed,
            "cpu_s": {"openevolve": c1.children_user + c1.children_system - c0.children_user - c0.children_system}}


def _serve(conn: Any, served: Any = None) -> None:
    from synthloop.testing.fake_llm import FakeOpenAIServer

    respond = make_responder()

    def counted(req: dict[str, Any]) -> str:  # the count the parent's progress bar reads
        if served is not None:
            with served.get_lock():
                served.value += 1
        return respond(req)

    with FakeOpenAIServer(counted) as srv:
        conn.send(srv.base_url)
        conn.recv()  # wait for "stop"
        conn.send([r.t for r in srv.requests if r.path.endswith("/chat/completions")])


class ServerProcess:
    """The fake LLM in its own process, as a real server would be: it must not share our GIL."""

    def __enter__(self) -> ServerProcess:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.served = ctx.Value("q", 0)  # LLM requests answered so far (shared memory, read for progress)
        self.proc = ctx.Process(target=_serve, args=(child, self.served), daemon=True)
        self.proc.start()
        self.base_url = self.conn.recv()
        return self

    def cpu_s(self) -> float:
        from synthloop.execution.isolation import proc_usage

        return proc_usage(self.proc.pid)[0]

    def stop(self) -> list[float]:
        self.conn.send("stop")
        ts = self.conn.recv()
        self.proc.join(5)
        return ts

    def __exit__(self, *exc: object) -> None:
        if self.proc.is_alive():
            self.proc.kill()


def measure(fn: Any, on_served: Any = None) -> dict[str, Any]:
    """``fn(base_url)`` against a fresh fake server; ``on_served(n)`` hears the request count as it grows."""
    with ServerProcess() as srv:
        s0 = srv.cpu_s()
        done = threading.Event()
        watcher = threading.Thread(target=_watch, args=(srv.served, on_served, done), daemon=True)
        if on_served is not None:
            watcher.start()
        try:
            res = fn(srv.base_url)
        finally:
            done.set()
            if watcher.is_alive():
                watcher.join()
        server_cpu = srv.cpu_s() - s0
        ts = srv.stop()
    n = len(ts)
    steady = 1000 * (ts[-1] - ts[0]) / (n - 1) if n > 1 else float("nan")
    return {"requests": n, "steady_ms": steady, "windows_ms": _windows(ts, n), "result": res,
            "server_cpu_s": server_cpu}


def _watch(served: Any, on_served: Any, done: threading.Event) -> None:
    while not done.wait(0.25):
        on_served(served.value)
    on_served(served.value)


class _Progress:
    """One progress bar per benchmark run on stderr (rich), or nothing with ``--quiet``."""

    def __init__(self, quiet: bool) -> None:
        self.prog: Any = None
        if not quiet:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("LLM requests"), TimeElapsedColumn(), console=Console(stderr=True))

    def running(self) -> AbstractContextManager[Any]:
        return self.prog if self.prog is not None else nullcontext()

    def run(self, label: str, total: int) -> Any:
        """A callback for :func:`measure` that moves a new bar named ``label``."""
        if self.prog is None:
            return None
        tid = self.prog.add_task(label, total=total)
        return lambda n: self.prog.update(tid, completed=n)

    def row(self, row: dict[str, Any]) -> None:
        line = json.dumps(row)
        if self.prog is not None:
            self.prog.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=sys.stderr)


def _cpu_ms(m: dict[str, Any], iterations: int) -> dict[str, float]:
    parts = {**m["result"]["cpu_s"], "llm_server": m["server_cpu_s"]}
    return {k: round(1000 * v / max(iterations, 1), 3) for k, v in parts.items()}


def ratio_rows(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenEvolve's overhead over ours, row by row: the same number of workers as our concurrency (else
    OpenEvolve's 1-worker default) and the nearest run length."""
    out = []
    for r in ours:
        pool = [t for t in theirs if t["workers"] == r["concurrency"]] or [t for t in theirs if t["workers"] == 1]
        if not pool:
            continue
        ref = min(pool, key=lambda t: abs(t["iterations"] - r["iterations"]))
        out.append({"iterations": r["iterations"], "concurrency": r["concurrency"],
                    "openevolve_iterations": ref["iterations"], "openevolve_workers": ref["workers"],
                    "openevolve_overhead_ms": ref["overhead_ms"], "synthloop_overhead_ms": r["overhead_ms"],
                    # a short run's overhead can drown in the noise of its LLM time (<= 0): no ratio then
                    "openevolve_over_synthloop": round(ref["overhead_ms"] / r["overhead_ms"], 2)
                    if r["overhead_ms"] > 0 else None})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="synthloop bench engine", description=__doc__.split("\n\n")[0].replace("``", "`")
                       + " JSON on stdout, progress on stderr.")
    ap.add_argument("--iterations", type=int, nargs="+", default=[100, 300, 1000, 3000],
                    help="run lengths to measure (default: 100 300 1000 3000)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4],
                    help="proposals in flight; one run per value and length (default: 1 4)")
    ap.add_argument("--openevolve-bin", default=shutil.which("openevolve-run"),
                    help="OpenEvolve's openevolve-run to measure side by side (default: from PATH; '' for none)")
    ap.add_argument("--openevolve-iterations", type=int, nargs="+", default=[100, 300, 1000, 3000],
                    help="OpenEvolve's run lengths")
    ap.add_argument("--openevolve-workers", type=int, nargs="+", default=[1, 4],
                    help="OpenEvolve's parallel_evaluations; our concurrency c is compared with c workers")
    ap.add_argument("--out", default=None, help="write the JSON here too")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    a = ap.parse_args(argv)
    progress = _Progress(a.quiet)

    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                               "synthloop": [], "openevolve": []}
    with progress.running(), tempfile.TemporaryDirectory(prefix="synthloop-bench-") as tmp:
        work = Path(tmp)
        for c in a.concurrency:
            for n in a.iterations:
                m = measure(lambda base, n=n, c=c: in_fresh_process(run_synthloop, n, c, base, work),
                            progress.run(f"synthloop   n={n} concurrency={c}", n))
                s = m["result"]["summary"]
                llm = m["result"]["llm_ms"]
                row = {
                    "iterations": n, "concurrency": c, "steady_ms": round(m["steady_ms"], 3),
                    "llm_call_ms": round(llm, 3),  # the SDK call, timed as OpenEvolve's is
                    # what the run recorded: the SDK call plus our retry wrapper and parsing
                    "llm_call_recorded_ms": round(m["result"]["llm_recorded_ms"], 3),
                    # at concurrency 1 LLM calls are serial: subtract them; above 1 they overlap with our work
                    "overhead_ms": round(m["steady_ms"] - (llm if c == 1 else 0.0), 3),
                    "all_in_ms": round(1000 * m["result"]["wall_s"] / max(n, 1), 3),
                    "llm_requests": m["requests"], "candidates": s["totals"]["candidates"],
                    "invalid": s["totals"]["invalid"],
                    "windows_ms": [round(w["ms"], 3) for w in m["windows_ms"]],
                    "cpu_ms": _cpu_ms(m, n),
                }
                results["synthloop"].append(row)
                progress.row({"synthloop": row})
                # run directories stay until the end: deleting thousands of files between runs would slow
                # the next run's file creation (ext4 skips recently deleted inodes), whichever side it is
        if a.openevolve_bin:
            for w in a.openevolve_workers:
                for n in a.openevolve_iterations:
                    m = measure(lambda base, n=n, w=w: run_openevolve(a.openevolve_bin, n, base, work, w),
                                progress.run(f"OpenEvolve  n={n} workers={w}", n))
                    r = m["result"]
                    row = {"iterations": n, "workers": w, "steady_ms": round(m["steady_ms"], 3),
                           "llm_call_ms": round(r["llm_ms"], 3),
                           # as for ours: with one worker its LLM calls are serial, with more they overlap
                           "overhead_ms": round(m["steady_ms"] - (r["llm_ms"] if w == 1 else 0.0), 3),
                           "all_in_ms": round(1000 * r["wall_s"] / n, 3), "llm_requests": m["requests"],
                           "failed_iterations": r["failed"],
                           "windows_ms": [round(x["ms"], 3) for x in m["windows_ms"]], "cpu_ms": _cpu_ms(m, n)}
                    results["openevolve"].append(row)
                    progress.row({"openevolve": row})
    source = "OpenEvolve measured side by side (steady ms per iteration, minus its LLM client time with 1 worker)"
    oe_rows = results["openevolve"]
    if not oe_rows:
        oe_rows = [{"iterations": n, "workers": 1, "overhead_ms": v} for n, v in OPENEVOLVE_DOCUMENTED.items()]
        source = "OpenEvolve 0.4.0 as documented for this machine kind, LLM client time included (not rerun)"
    ratios = ratio_rows(results["synthloop"], oe_rows)
    results["ratios"] = {"baseline": source, "rows": ratios, "target": ">= 5x (synthloop at most 1/5 of OpenEvolve)"}
    text = json.dumps(results, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
