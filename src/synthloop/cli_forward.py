"""Command groups whose commands live elsewhere: ``synthloop bench ...`` and ``synthloop ssd ...``.

Each command here is a thin forwarder registered with typer's own help switched off, so that every
argument, ``--help`` included, reaches the real parser (argparse for the benchmarks, the domain's typer
app for ``ssd``): ``synthloop bench kernels --help`` shows the benchmark's options, not the forwarder's.
The real modules are imported only when a command runs. That keeps ``synthloop --help`` fast (the
social-dilemma engine compiles with numba on import) while still listing both groups and their commands.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import typer

#: how a forwarder is registered: all arguments, --help included, are passed on untouched
FORWARD: dict[str, Any] = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def call_argparse_main(main: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run an argparse-based ``main(argv)``: its ``--help`` and its errors exit through SystemExit."""
    try:
        return int(main(argv) or 0)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)


# ---------------------------------------------------------------- bench
bench_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                        help="Run a benchmark: its figures as one JSON document on stdout, its progress on stderr."
                             " `synthloop bench NAME --help` lists a benchmark's options.")

BENCHMARKS = {
    "engine": ("synthloop.bench.engine",
               "Engine overhead per iteration against a zero-latency fake LLM (and OpenEvolve's, if installed)."),
    "ssd": ("synthloop.tasks.ssd.bench", "Social-dilemma simulator steps/s and 5-seed evaluation time."),
    "kernels": ("synthloop.tasks.kernels.bench", "Measured machine ceilings, then every seed kernel on its ladders."),
}


def _bench_forwarder(name: str, module: str, summary: str) -> None:
    def forward(ctx: typer.Context) -> None:
        raise typer.Exit(call_argparse_main(importlib.import_module(module).main, list(ctx.args)))

    forward.__doc__ = summary
    bench_app.command(name, context_settings=FORWARD)(forward)


for _name, (_module, _summary) in BENCHMARKS.items():
    _bench_forwarder(_name, _module, _summary)


# ---------------------------------------------------------------- ssd
ssd_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                      help="Sequential social dilemmas (Gathering, Cleanup): evaluate, render, train the Q-learning"
                           " baseline, benchmark, GEPA baseline.")

#: the commands of synthloop.tasks.ssd.cli and the first line of each one's docstring (a test keeps them equal)
SSD_COMMANDS = {
    "eval": "Evaluate a policy over seeds and print the social metrics.",
    "render": "Write an animated GIF of one episode (god's-eye view, beams visible).",
    "train-q": "Train the shared tabular Q-learner with cooperative reward shaping and save the table.",
    "bench": "Throughput benchmark; prints one JSON object.",
    "gepa": "GEPA baseline: optimise only the system prompt with the `gepa` package (docs/gepa_baseline.md).",
}


def _ssd_forwarder(name: str, summary: str) -> None:
    def forward(ctx: typer.Context) -> None:
        from synthloop.tasks.ssd.cli import invoke

        raise typer.Exit(invoke(name, list(ctx.args)))

    forward.__doc__ = summary
    ssd_app.command(name, context_settings=FORWARD)(forward)


for _name, _summary in SSD_COMMANDS.items():
    _ssd_forwarder(_name, _summary)
