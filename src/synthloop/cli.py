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
def tasks_cmd(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List the built-in tasks."""
    from synthloop.tasks.registry import task_class, task_names

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
def _progress_printer(total: int, quiet: bool):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    if quiet:
        return None, (lambda info: None)
    prog = Progress(
        TextColumn("[bold]gen {task.fields[gen]}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("best {task.fields[best]}"), TextColumn("tokens {task.fields[tokens]}"),
        TextColumn("${task.fields[cost]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=err,
        transient=False,
    )
    tid = prog.add_task("run", total=total, gen=0, best="-", tokens=0, cost="0.0000")

    def update(info: dict[str, Any]) -> None:
        best = info.get("best")
        prog.update(tid, advance=1, gen=info["generation"], best=f"{best:.6g}" if best is not None else "-",
                    tokens=info["tokens"], cost=f"{info['cost_usd']:.4f}")

    return prog, update


def _run_and_report(run_dir: Path, total: int, quiet: bool, as_json: bool, iterations: int | None = None) -> None:
    from synthloop.runner import execute_run

    prog, update = _progress_printer(total, quiet)
    if prog is not None:
        prog.start()
    try:
        summary = execute_run(run_dir, update, iterations=iterations)
    finally:
        if prog is not None:
            prog.stop()
    if as_json:
        print(json.dumps(summary, default=str))
    else:
        _print_summary(summary)


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
    from synthloop.runner import prepare_run
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
    make_task(cfg.task, cfg.task_options)  # unknown task or bad task option fails here, before any work
    if cfg.llm.model:  # validate the model string early; no client is built here (keys stay off this heap)
        from synthloop.llm.factory import parse_model

        provider, _ = parse_model(cfg.llm.model)
        key = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}.get(provider)
        import os

        if key and not cfg.llm.base_url and not os.environ.get(key):
            _fail(f"{cfg.llm.model} needs {key} in the environment (or --base-url for a compatible server)")
        if cfg.llm.model.startswith("replay:") and not (Path(cfg.llm.model[7:]) / "run.sqlite").is_file():
            _fail(f"replay run {cfg.llm.model[7:]!r} has no run.sqlite; replay needs a recorded run directory")
    run_dir = prepare_run(cfg, announce=lambda line: err.print(line))
    err.print(f"run directory: {run_dir}")
    _run_and_report(run_dir, cfg.search.iterations + 1, quiet, as_json)


@app.command("resume")
def resume_cmd(
    run: Path = typer.Argument(..., help="run directory"),
    iterations: int | None = typer.Option(None, help="raise the iteration target"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Continue a run after a crash, kill -9 or budget stop. Completed work is never redone."""
    from synthloop.runner import load_run_config
    from synthloop.tasks.ssd.gepa_baseline import is_gepa_run

    if is_gepa_run(run):
        _fail(f"{run} is a GEPA baseline run (synthloop ssd gepa); it cannot be resumed: start a new one")
    cfg = load_run_config(run)
    _run_and_report(run, (iterations or cfg.search.iterations) + 1, quiet, as_json, iterations)


# ---------------------------------------------------------------- show
def _print_summary(s: dict[str, Any]) -> None:
    from rich.table import Table

    synth = s.get("synthesizer") or {}
    kind = synth.get("kind")
    label = f"{synth.get('name')} ({'offline baseline, no LLM' if kind == 'baseline' else kind})"
    out.print(f"[bold]{s['task']}[/bold]  run {s['run_dir']}  synthesizer {label}  status {s['status']}")
    if s.get("stopped"):
        out.print(f"[yellow]stopped early: {s['stopped']}[/yellow]")
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
    out.print(f"LLM calls {tot['calls']} ({tot['errors']} failed), tokens in {tot['input_tokens']} out "
              f"{tot['output_tokens']}, cost ${tot['cost_usd']:.4f}, wall {tot['wall_s']:.1f} s, "
              f"candidates {tot['candidates']} ({tot['invalid']} invalid)")
    if tot.get("unevaluated"):
        out.print(f"{tot['unevaluated']} candidate(s) stored but not evaluated (in flight when the run stopped); "
                  "`synthloop resume` evaluates them")


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
    index = run_sweep(configs, out_dir, repeats, sets, grid, announce=lambda m: err.print(m, markup=False))
    out.print(str(index))


@app.command("table", context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                         "help_option_names": []})
def table_cmd(ctx: typer.Context) -> None:
    """Paper-style table over runs or sweeps of social-dilemma synthesis: `synthloop table RUNS... [--csv F]`."""
    from synthloop.tasks.ssd.table import main as table_main

    raise typer.Exit(table_main(list(ctx.args)))


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
    if not paths:
        _fail(f"{str(run)!r} holds no run (no run.sqlite) and no sweep")
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
    pools = list(POOLS) if pool == "all" else [pool]
    if any(p not in POOLS for p in pools):
        _fail(f"unknown pool {pool!r}; valid pools: {', '.join(POOLS)}, all")
    art = Artifact(artifact.read_text(), t.language)
    result = evaluate_artifact(t, task, art, pools)
    if as_json:
        print(json.dumps(result, default=str))
        return
    for p, ev in result["pools"].items():
        out.print(f"[bold]{p}[/bold]: valid={ev['valid']} score={ev['score']} metrics={ev['metrics']}")
        for d in ev["diagnostics"][:20]:
            out.print(f"  {d}")


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


# ---------------------------------------------------------------- bench
@app.command("bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_cmd(ctx: typer.Context, what: str = typer.Argument(..., help="engine, ssd or kernels")) -> None:
    """Run a benchmark and print its figures as JSON."""
    import importlib

    targets = {"engine": "synthloop.bench.engine", "ssd": "synthloop.tasks.ssd.bench",
               "kernels": "synthloop.tasks.kernels.bench"}
    if what not in targets:
        _fail(f"unknown benchmark {what!r}; valid choices: {', '.join(targets)}")
    mod = importlib.import_module(targets[what])
    raise typer.Exit(mod.main(list(ctx.args)))


@app.command("render", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def render_cmd(ctx: typer.Context, task: str = typer.Argument(..., help="ssd/gathering or ssd/cleanup")) -> None:
    """Render an episode to an animated GIF (social dilemmas): --policy P --seed S --out episode.gif."""
    if not task.startswith("ssd/"):
        _fail(f"render supports ssd/gathering and ssd/cleanup, not {task!r}")
    from synthloop.tasks.ssd.cli import cli_render

    raise typer.Exit(cli_render([task.split("/", 1)[1], *ctx.args]))


@app.command("autoresearch", context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                                "help_option_names": []})
def autoresearch_cmd(ctx: typer.Context) -> None:
    """Outer loop: a researcher redesigns the synthesis pipeline of TASK behind an evaluation service.

    `synthloop autoresearch TASK --objective M --researcher-model R --synthesizer-model S --budget-evals N
    --replicates r` (`synthloop autoresearch --help` for all options)."""
    from synthloop.autoresearch.cli import main as ar_main

    raise typer.Exit(ar_main(list(ctx.args)))


def _mount_optional() -> None:
    import importlib

    for name, module in (("ssd", "synthloop.tasks.ssd.cli"),):
        try:
            sub = importlib.import_module(module).app
        except Exception:
            continue
        app.add_typer(sub, name=name, help=f"{name} domain commands")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors with exit code 2 for user mistakes."""
    from synthloop.llm.factory import UnknownModel
    from synthloop.tasks.registry import UnknownTask

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["ssd"]:  # domain sub-apps import heavy modules (numba): mount only when asked for
        _mount_optional()
    try:
        rc = app(args=argv, standalone_mode=False)  # click returns typer.Exit's code in this mode
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except (UsageError, ConfigError, UnknownTask, UnknownModel) as e:
        err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except ValueError as e:  # pydantic task-option errors and similar
        msg = str(e).splitlines()
        err.print(f"error: {' '.join(x.strip() for x in msg[:3])}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except __import__("click").exceptions.ClickException as e:
        err.print(f"error: {e.format_message()}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except __import__("click").exceptions.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted; resume with `synthloop resume RUN`")
        sys.exit(130)


if __name__ == "__main__":
    main()
