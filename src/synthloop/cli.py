"""The `synthloop` command line.

Every user mistake (unknown task, model, strategy or config key; a malformed
file) ends in one line on stderr naming the problem and the valid choices,
with exit code 2 and no traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from synthloop.cli_forward import FORWARD, bench_app, ssd_app
from synthloop.config import ConfigError, apply_override, build_config, load_yaml

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="synthloop: a frozen LLM as an optimizer in algorithm space.")
err = Console(stderr=True)
out = Console()


class UsageError(Exception):
    """A one-line user error (exit code 2)."""


def _fail(msg: str) -> None:
    raise UsageError(msg)


# ---------------------------------------------------------------- tasks
@app.command("tasks")
def tasks_cmd(task: str | None = typer.Argument(None, help="a task: print its description and its own options"),
              as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List the built-in tasks, or one task's own options (type, default, description)."""
    from synthloop.tasks.registry import task_class, task_names

    if task is not None:
        from synthloop.cli_help import option_rows, task_option_lines

        cls = task_class(task)  # an unknown task: one line naming the valid ones
        if as_json:
            print(json.dumps({"name": task, "description": cls.description, "options": option_rows(cls.Options)},
                             indent=1))
            return
        print(f"{task}: {cls.description}")
        print("\n".join(task_option_lines(task)))
        return
    rows = []
    for name in task_names():
        try:
            cls = task_class(name)
            rows.append({"name": name, "description": cls.description})
        except Exception as e:  # an optional dependency missing for one task must not hide the others
            rows.append({"name": name, "description": f"(unavailable: {type(e).__name__}: {e})"})
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    for r in rows:
        out.print(f"[bold]{r['name']}[/bold]  {r['description']}")


# ---------------------------------------------------------------- run
def _progress_printer(total: int, quiet: bool, run_dir: Path | None = None):
    """A progress bar on stderr. Its cost column says what the run's synthesizer costs: ``$0.0123``, ``unpriced``
    (no price at the endpoint the run uses), or ``baseline: mutate`` (no model, no tokens, no cost)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    if quiet:
        return None, (lambda info: None)
    from synthloop.report.labels import run_cost_kind

    baseline, priced = run_cost_kind(run_dir)
    spend = [TextColumn("{task.fields[cost]}")] if baseline else [
        TextColumn("tokens {task.fields[tokens]}"), TextColumn("{task.fields[cost]}")]
    prog = Progress(
        TextColumn("[bold]gen {task.fields[gen]}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("best {task.fields[best]}"), *spend, TimeElapsedColumn(), TimeRemainingColumn(), console=err,
        transient=False,
    )

    def cost(usd: float) -> str:
        return baseline or (f"${usd:.4f}" if priced else "unpriced")

    tid = prog.add_task("run", total=total, gen=0, best="-", tokens=0, cost=cost(0.0))

    def update(info: dict[str, Any]) -> None:
        best = info.get("best")
        prog.update(tid, advance=1, gen=info["generation"], best=f"{best:.6g}" if best is not None else "-",
                    tokens=info["tokens"], cost=cost(info["cost_usd"]))

    return prog, update


def _run_and_report(run_dir: Path, total: int, quiet: bool, as_json: bool, iterations: int | None = None) -> None:
    from synthloop.runner import execute_run

    prog, update = _progress_printer(total, quiet, run_dir)
    if prog is not None:
        prog.start()
    try:
        try:
            summary = execute_run(run_dir, update, iterations=iterations)
        finally:
            if prog is not None:
                prog.stop()
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM): the run is recorded as interrupted; say how to go on
        from synthloop.cli_exit import interrupted

        raise typer.Exit(interrupted(run_dir)) from None
    if as_json:
        print(json.dumps(summary, default=str))
    else:
        _print_summary(summary)
    from synthloop.report.summary import end_of_run

    code, lines = end_of_run(summary)  # a failed run: its cause on stderr, exit 1
    for line in lines:
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    if code:
        raise typer.Exit(code)


def task_flags(task_name: str, args: list[str]) -> dict[str, Any]:
    """Map extra `--some-option VALUE` flags to the task's own options (e.g. `--method epo_safe`)."""
    import yaml

    from synthloop.tasks.registry import task_class

    fields = task_class(task_name).Options.model_fields
    opts: dict[str, Any] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--"):
            _fail(f"unexpected argument {a!r}; see `synthloop run --help`")
        name, _, value = a[2:].partition("=")
        key = name.replace("-", "_")
        if key not in fields:
            valid = ", ".join("--" + f.replace("_", "-") for f in fields) or "none"
            _fail(f"unknown option {a.split('=')[0]!r} for {task_name}; its own options: {valid}")
        if not _:
            nxt = args[i + 1] if i + 1 < len(args) else None
            if nxt is None or nxt.startswith("--"):
                value = "true"
            else:
                value, i = nxt, i + 1
        opts[key] = yaml.safe_load(value)
        i += 1
    return opts


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_cmd(
    ctx: typer.Context,
    task: str | None = typer.Argument(None, help="task name (see `synthloop tasks`); or set in --config"),
    model: str | None = typer.Option(None, help="openai/<m>, anthropic/<m>, ollama/<m>, replay:<run-dir>, mutate"),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible server URL"),
    strategy: str | None = typer.Option(None, help="refine, one_plus_one, best_of_n"),
    iterations: int | None = typer.Option(None, help="refine: K; one_plus_one: children; best_of_n: N"),
    feedback: str | None = typer.Option(None, help="sparse, dense, bit, none"),
    executor: str | None = typer.Option(None, help="local or ray"),
    ray_address: str | None = typer.Option(None, help="Ray cluster address (executor ray)"),
    workers: int | None = typer.Option(None, help="sandboxed worker processes"),
    concurrency: int | None = typer.Option(None, help="proposals in flight at once"),
    max_cost_usd: float | None = typer.Option(None, help="stop when LLM spend reaches this"),
    max_llm_calls: int | None = typer.Option(None, help="stop after this many LLM calls"),
    max_wall: float | None = typer.Option(None, help="stop after this many seconds"),
    out_dir: Path | None = typer.Option(None, "--out", help="run directory (default runs/<run-id>)"),
    config: Path | None = typer.Option(None, "--config", help="YAML file with any of these settings"),
    sets: list[str] = typer.Option([], "--set", help="override any config key: a.b=value (repeatable)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    as_json: bool = typer.Option(False, "--json", help="print the final summary as JSON"),
) -> None:
    """Run a search on TASK and write runs/<run-id>/ (config, database, artifacts, report).

    Options of the task itself may be given as flags too (`--n 30` for circle packing), or as
    `--set task_options.n=30`.
    """
    from synthloop.runner import preflight, prepare_run
    from synthloop.tasks.registry import make_task

    data: dict[str, Any] = load_yaml(config) if config else {}
    flags = {
        "task": task, "llm.model": model, "llm.base_url": base_url, "search.strategy": strategy,
        "search.iterations": iterations, "feedback.mode": feedback, "execution.executor": executor,
        "execution.ray_address": ray_address, "execution.workers": workers, "search.concurrency": concurrency,
        "budget.max_cost_usd": max_cost_usd, "budget.max_llm_calls": max_llm_calls, "budget.max_wall_s": max_wall,
        "out": str(out_dir) if out_dir else None,
    }
    for key, value in flags.items():
        if value is not None:
            node = data
            *head, last = key.split(".")
            for h in head:
                node = node.setdefault(h, {})
            node[last] = value
    for s in sets:
        apply_override(data, s)
    if not data.get("task"):
        _fail("no task given: pass TASK or set `task:` in --config; see `synthloop tasks`")
    if ctx.args:
        data.setdefault("task_options", {}).update(task_flags(data["task"], list(ctx.args)))
    cfg = build_config(data)
    preflight(make_task(cfg.task, cfg.task_options), cfg.execution.executor)  # fails here, before any work
    if cfg.llm.model:  # validate the model string early; no client is built here (keys stay off this heap)
        from synthloop.llm.factory import missing_key

        needs = missing_key(cfg.llm.model, cfg.llm.base_url)  # OPENAI_BASE_URL / ANTHROPIC_BASE_URL count too
        if needs:
            _fail(needs)
        if cfg.llm.model.startswith("replay:") and not (Path(cfg.llm.model[7:]) / "run.sqlite").is_file():
            _fail(f"replay run {cfg.llm.model[7:]!r} has no run.sqlite; replay needs a recorded run directory")
    run_dir = prepare_run(cfg, announce=lambda line: err.print(line, markup=False, highlight=False, soft_wrap=True))
    err.print(f"run directory: {run_dir}")
    _run_and_report(run_dir, cfg.search.iterations + 1, quiet, as_json)


@app.command("resume")
def resume_cmd(
    run: Path = typer.Argument(..., help="run directory"),
    iterations: int | None = typer.Option(None, help="raise the iteration target"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Continue a run after Ctrl-C, a crash, kill -9, a failure or a budget stop. Completed work is never redone.

    A completed run is left alone (exit 0: resuming is idempotent, so a script may resume every run of a
    batch); `--iterations N` above its target extends it.
    """
    from synthloop.runner import completed_target, load_run_config
    from synthloop.tasks.ssd.gepa_baseline import is_gepa_run

    if is_gepa_run(run):
        _fail(f"{run} is a GEPA baseline run (synthloop ssd gepa); it cannot be resumed: start a new one")
    cfg = load_run_config(run)
    status, target = completed_target(run)
    target = target if target is not None else cfg.search.iterations
    if status == "completed" and (iterations is None or iterations <= target):
        err.print(f"run {run} is already completed ({target} iterations); nothing to resume. To extend it: "
                  f"synthloop resume {run} --iterations N (N > {target})", markup=False, highlight=False,
                  soft_wrap=True)
        return
    _run_and_report(run, (iterations or cfg.search.iterations) + 1, quiet, as_json, iterations)


# ---------------------------------------------------------------- show
def _print_summary(s: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from synthloop.report.labels import synthesizer_label, totals_line, unpriced_note

    synth = s.get("synthesizer") or {}
    label = escape(synthesizer_label(synth))  # "baseline: mutate (offline, no LLM)", "openai/m (LLM at URL)"
    out.print(f"[bold]{s['task']}[/bold]  run {s['run_dir']}  synthesizer {label}  status {s['status']}",
              soft_wrap=True)
    if s.get("stopped"):
        out.print(f"[yellow]stopped early: {s['stopped']}[/yellow]")
    ended = {"failed": f"failed: {s.get('error') or 'no cause recorded'}",
             "interrupted": "interrupted (Ctrl-C or SIGTERM) before the end of its search",
             "stale": "stale: stored as running, but no process holds its lock (killed, or the machine went down)",
             }.get(s["status"])
    if ended:
        out.print(f"[red]{escape(ended)}[/red]", soft_wrap=True)
    t = Table("generation", "proposals", "valid", "best", "best so far")
    rows = s["iterations"]
    if len(rows) > 25:  # long runs: the generations that raised the best, plus the first and the last
        keep, prev = [], None
        for i, it in enumerate(rows):
            if i in (0, len(rows) - 1) or it["best_so_far"] != prev:
                keep.append(it)
            prev = it["best_so_far"]
        t.title = f"{len(keep)} of {len(rows)} generations shown (those that raised the best; `--json` has all)"
        rows = keep
    for it in rows:
        fmt = lambda v: "-" if v is None else f"{v:.6g}"  # noqa: E731
        t.add_row(str(it["generation"]), str(it["proposals"]), str(it["valid"]), fmt(it["best"]), fmt(it["best_so_far"]))
    out.print(t)
    b = s.get("best")
    if b:
        ref = s.get("reference")
        extra = f" (reference {ref[0]}: {ref[1]})" if ref else ""
        out.print(f"best: candidate #{b['id']} (generation {b['generation']}) {s['objective']} = "
                  f"{b['selection_score']:.6g}{extra}  artifact {b['artifact']}")
    if s["candidates"] and not s.get("valid_candidates"):
        n = len(s["candidates"])
        out.print(f"[bold red]no valid candidate[/bold red]: none of the {n} candidate(s) was valid"
                  + ("; most common reasons:" if s.get("rejections") else ""))
        for r in s.get("rejections") or []:
            out.print(f"  {r['count']}x {escape(r['reason'])}", soft_wrap=True)
    g = s.get("gate") or {}
    if g.get("rows"):
        gt = Table("role", "candidate", "in-distribution", "held-out", "drop", "verdict")
        for r in g["rows"]:
            fmt = lambda v: "-" if v is None else f"{v:.6g}"  # noqa: E731
            drop = "-" if r["relative_drop"] is None else f"{100 * r['relative_drop']:.1f}%"
            gt.add_row(r["role"], str(r["candidate"]), fmt(r["in_distribution"]), fmt(r["heldout"]), drop,
                       "[red]FLAGGED[/red]" if r["flagged"] else "ok")
        out.print(f"held-out gate: {g['status']} (flag if drop > {100 * g.get('max_drop', 0):.1f}%)")
        out.print(gt)
    elif g:
        out.print(f"held-out gate: {g.get('status')}")
    tot = s["totals"]
    out.print(escape(totals_line(tot, synth)), soft_wrap=True)  # proposals of a baseline, or LLM calls and cost
    note = unpriced_note(synth)  # why "unpriced", and how to give a price
    if note:
        out.print(escape(note), soft_wrap=True)
    if tot.get("unevaluated"):
        out.print(f"{tot['unevaluated']} candidate(s) stored but not evaluated (in flight when the run stopped); "
                  "`synthloop resume` evaluates them")
    if s.get("hint"):
        out.print(escape(s["hint"]), soft_wrap=True)


@app.command("show")
def show_cmd(run: Path = typer.Argument(..., help="run directory"),
             as_json: bool = typer.Option(False, "--json", help="one JSON object for scripts")) -> None:
    """Summarise a run: best, per-iteration scores, held-out verdict, tokens, cost."""
    from synthloop.report.summary import summarize

    if not (run / "run.sqlite").is_file():
        _fail(f"{str(run)!r} is not a run directory (no run.sqlite)")
    s = summarize(run)
    if as_json:
        print(json.dumps(s, default=str))
    else:
        _print_summary(s)


@app.command("sweep")
def sweep_cmd(
    configs: list[Path] = typer.Argument(..., help="YAML run configs (each may hold a `grid:` of lists)"),
    repeats: int = typer.Option(1, min=1, help="independent repeats per cell (seeds base+i)"),
    out_dir: Path = typer.Option(Path("runs/sweep"), "--out", help="sweep directory"),
    sets: list[str] = typer.Option([], "--set", help="override for every cell: a.b=value"),
    grids: list[str] = typer.Option([], "--grid", help="add a grid axis: a.b=v1,v2,v3 (repeatable)"),
) -> None:
    """Run configs × grid × repeats as ordinary runs; rerunning resumes. `synthloop report DIR` summarises."""
    import yaml

    from synthloop.sweep import run_sweep

    for c in configs:
        if not c.is_file():
            _fail(f"config file {str(c)!r} does not exist")
    grid: dict[str, list[Any]] = {}
    for g in grids:
        k, sep, v = g.partition("=")
        if not sep or not v:
            _fail(f"--grid expects key=v1,v2, got {g!r}")
        grid[k] = [yaml.safe_load(x) for x in v.split(",")]
    index = run_sweep(configs, out_dir, repeats, sets, grid,  # one line per message, never wrapped
                      announce=lambda m: err.print(m, markup=False, highlight=False, soft_wrap=True))
    out.print(str(index))


@app.command("table", context_settings=FORWARD)
def table_cmd(ctx: typer.Context) -> None:
    """Table over runs or sweeps of social-dilemma synthesis, as in arXiv 2603.19453: `synthloop table RUNS...`."""
    from synthloop.cli_forward import call_argparse_main
    from synthloop.tasks.ssd.table import main as table_main

    raise typer.Exit(call_argparse_main(table_main, list(ctx.args)))


@app.command("report")
def report_cmd(run: Path = typer.Argument(..., help="run directory (or a sweep directory)"),
               out_dir: Path | None = typer.Option(None, "--out", help="where to write (default: the run)")) -> None:
    """Write a run's report: the domain's own report where it has one, else a self-contained HTML page."""
    import importlib

    if not run.is_dir():
        _fail(f"{str(run)!r} is not a directory")
    target = out_dir or run
    target.mkdir(parents=True, exist_ok=True)
    domain = None
    if (run / "run.sqlite").is_file():
        from synthloop.runner import load_run_config

        domain = load_run_config(run).task.split("/", 1)[0]
    elif (run / "autoresearch.sqlite").is_file():
        domain = "autoresearch"
    elif (run / "sweep.json").is_file():  # a sweep: the domain of its cells decides the report
        cells = json.loads((run / "sweep.json").read_text()).get("cells") or [{}]
        domain = str(cells[0].get("task", "")).split("/", 1)[0] or None
    modules = {"autoresearch": "synthloop.autoresearch.report"}
    mod_name = modules.get(domain or "", f"synthloop.tasks.{domain}.report") if domain else None
    paths: list[Path] = []
    if mod_name:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError:
            mod = None
        if mod is not None and hasattr(mod, "report"):
            paths = list(mod.report(run, target))
    if not paths and (run / "run.sqlite").is_file():
        from synthloop.report.html import write_html_report

        paths = [write_html_report(run, target / "report.html")]
    elif not paths and (run / "sweep.json").is_file():  # a sweep of a domain without a sweep report: each cell's
        from synthloop.report.html import write_html_report

        for cell in sorted(p_.parent for p_ in run.rglob("run.sqlite")):
            (target / cell.relative_to(run)).mkdir(parents=True, exist_ok=True)
            paths.append(write_html_report(cell, target / cell.relative_to(run) / "report.html"))
        if not paths:
            _fail(f"sweep {str(run)!r} holds no run yet (no cell has a run.sqlite); run `synthloop sweep` first")
    if not paths:
        _fail(f"{str(run)!r} holds no run (no run.sqlite) and no sweep (no sweep.json)")
    for p_ in paths:
        out.print(str(p_))


# ---------------------------------------------------------------- eval
@app.command("eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def eval_cmd(
    ctx: typer.Context,
    task: str = typer.Argument(..., help="task name"),
    artifact: Path | None = typer.Option(None, "--artifact", help="file holding the artifact"),
    pool: str = typer.Option("feedback", help="feedback, selection, heldout or all"),
    sets: list[str] = typer.Option([], "--set", help="task option: key=value (repeatable)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Evaluate one artifact on a task, in the sandbox, and print the result."""
    if task.startswith("ssd/") and artifact is None:
        from synthloop.tasks.ssd.cli import cli_eval

        raise typer.Exit(cli_eval([task.split("/", 1)[1], *ctx.args, *(["--json"] if as_json else [])]))
    if artifact is None:
        _fail("--artifact FILE is required")
    if not artifact.is_file():
        _fail(f"artifact file {str(artifact)!r} does not exist")
    from synthloop.core.types import POOLS, Artifact
    from synthloop.tasks.registry import make_task

    opts: dict[str, Any] = {}
    for s in sets:
        k, _, v = s.partition("=")
        if not _:
            _fail(f"--set expects key=value, got {s!r}")
        opts[k.removeprefix("task_options.")] = __import__("yaml").safe_load(v)
    if ctx.args:  # the task's own options as flags, as for `run` (e.g. --backend cpu)
        opts.update(task_flags(task, list(ctx.args)))
    t = make_task(task, opts)
    from synthloop.runner import preflight

    preflight(t, "local")
    pools = list(POOLS) if pool == "all" else [pool]
    if any(p not in POOLS for p in pools):
        _fail(f"unknown pool {pool!r}; valid pools: {', '.join(POOLS)}, all")
    art = Artifact(artifact.read_text(), t.language)
    result = evaluate_artifact(t, task, art, pools)
    if as_json:
        print(json.dumps(result, default=str))
    else:
        for p, ev in result["pools"].items():
            out.print(f"[bold]{p}[/bold]: valid={ev['valid']} score={ev['score']} metrics={ev['metrics']}",
                      highlight=False)
            for d in ev["diagnostics"][:20]:
                out.print(f"  {d}", markup=False, highlight=False)
    if not result["valid"]:  # loud: a script must not take a rejected artifact for a score
        if result["problems"]:
            err.print(f"error: {artifact} is not a valid {task} artifact:", markup=False, highlight=False,
                      soft_wrap=True)
            for problem in result["problems"]:
                err.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        else:
            bad = ", ".join(p for p, ev in result["pools"].items() if not ev["valid"])
            err.print(f"error: {artifact} is invalid on the {bad} pool(s) (diagnostics above)", markup=False,
                      highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def evaluate_artifact(task: Any, task_name: str, art: Any, pools: list[str]) -> dict[str, Any]:
    """Static checks, then sandboxed evaluation on the given pools (private values left out)."""
    from synthloop.config import RunConfig
    from synthloop.execution import make_executor
    from synthloop.loop.engine import Engine
    from synthloop.store.db import RunDB

    problems = task.validate(art)
    if problems:
        return {"valid": False, "problems": problems, "pools": {}}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ex = make_executor("local", task, task_name, task.options.model_dump(), None, None)
        ex.start()
        try:
            cfg = RunConfig(task=task_name)
            eng = Engine(cfg, task, None, ex, RunDB(Path(tmp) / "eval.sqlite"), Path(tmp))  # type: ignore[arg-type]
            evs = asyncio.run(eng.evaluate(art, [p for p in pools if task.pools().get(p)]))
        finally:
            ex.close()
    return {"valid": all(e.valid for e in evs.values()), "problems": [],
            "pools": {p: {k: v for k, v in e.to_dict().items() if k != "private"} for p, e in evs.items()}}


# ---------------------------------------------------------------- forwarded commands
app.add_typer(bench_app, name="bench")
app.add_typer(ssd_app, name="ssd")


@app.command("render", context_settings=FORWARD)
def render_cmd(ctx: typer.Context) -> None:
    """Render an episode to an animated GIF (social dilemmas): TASK --policy P --seed S --out episode.gif."""
    args = list(ctx.args)
    if "--help" in args:  # the options are those of `synthloop ssd render` (whose GAME takes the ssd/ prefix)
        from synthloop.tasks.ssd.cli import invoke

        raise typer.Exit(invoke("render", ["--help"], prog="synthloop"))
    task = args[0] if args else None
    if task is None or not task.startswith("ssd/"):
        _fail(f"render supports ssd/gathering and ssd/cleanup (the first argument), not {task!r}; "
              "see `synthloop render --help`")
    from synthloop.tasks.ssd.cli import cli_render

    raise typer.Exit(cli_render([task.split("/", 1)[1], *args[1:]]))


@app.command("autoresearch", context_settings=FORWARD)
def autoresearch_cmd(ctx: typer.Context) -> None:
    """Outer loop: a researcher redesigns the synthesis pipeline of TASK behind an evaluation service.

    `synthloop autoresearch TASK --objective M --researcher-model R --synthesizer-model S --budget-evals N
    --replicates r` (`synthloop autoresearch --help` for all options)."""
    from synthloop.autoresearch.cli import main as ar_main

    raise typer.Exit(ar_main(list(ctx.args)))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: an exit code and, on failure, one line on stderr; never a traceback.

    User mistakes (bad arguments, unknown task, model or config key, a missing optional extra) exit 2,
    Ctrl-C 130 with the resume hint, a bug 1 with the traceback saved to a file (see synthloop.cli_exit).
    """
    from synthloop.cli_exit import run_main
    from synthloop.execution import MissingExtra
    from synthloop.llm.factory import UnknownModel
    from synthloop.tasks.registry import UnknownTask

    args = list(sys.argv[1:] if argv is None else argv)
    sys.exit(run_main(app, args, (UsageError, ConfigError, UnknownTask, UnknownModel, MissingExtra)))


if __name__ == "__main__":
    main()
