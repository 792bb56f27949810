"""Options can be found: every command's `--help` exits 0 and lists that command's own options.

`run TASK --help` and `tasks TASK` list the task's options from its pydantic model; forwarded commands
(`render`, `bench engine|ssd|kernels`, `ssd ...`, `autoresearch`) show their real parser's help, not the
forwarder's. Help text cites only documents a user can read (a paper or a file under docs/).
"""

import json
import re
import subprocess
import sys

import pytest
import typer.main

from synthloop.cli import app
from synthloop.cli_forward import BENCHMARKS, SSD_COMMANDS


def synthloop_cmd() -> list[str]:
    return [sys.executable, "-m", "synthloop.cli"]


def cli(args, env, cwd):
    return subprocess.run(synthloop_cmd() + args, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def every_help_invocation() -> list[list[str]]:
    """`--help` of the program, of every command and of every subcommand, from the app itself."""
    root = typer.main.get_command(app)
    found = [["--help"]]
    for name, command in root.commands.items():
        found.append([name, "--help"])
        for sub in getattr(command, "commands", {}):
            found.append([name, sub, "--help"])
    return found + [["autoresearch", "resume", "--help"]]


def uncited(text: str) -> list[str]:
    """References to documents that are not in the repository: a spec section, Metal-Sci without its paper."""
    bad = re.findall(r"spec(?:ification)? §[\d.]+", text)
    bad += [line for line in text.splitlines() if "Metal-Sci" in line and "arXiv" not in line]
    return bad


#: what some of those helps must contain: the command's own options, not a forwarder's
NEEDLES = {
    "--help": ["ssd", "bench", "render", "autoresearch"],
    "run --help": ["--iterations", "synthloop tasks TASK"],
    "eval --help": ["--artifact", "--policy", "--seeds", "default builtin:bfs"],
    "render --help": ["--policy", "--seed", "--out", "--frames-dir", "--cell-size"],
    "bench --help": ["engine", "ssd", "kernels", "JSON"],
    "bench engine --help": ["--iterations", "--concurrency", "--openevolve-bin", "--quiet"],
    "bench ssd --help": ["--steps", "--no-cold"],
    "bench kernels --help": ["--backend", "--tasks", "--split", "--json-out"],
    "ssd --help": list(SSD_COMMANDS),
    "ssd eval --help": ["--policy", "--seeds", "--protocol"],
    "autoresearch --help": ["--synthesizer-model", "--researcher-model", "--budget-evals"],
    "autoresearch resume --help": ["--researcher-model", "run_dir"],
}


@pytest.mark.parametrize("args", every_help_invocation(), ids=" ".join)
def test_every_help_exits_0_without_a_traceback(args, cli_env, tmp_path):
    r = cli(args, cli_env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and "Traceback" not in r.stdout
    assert "usage" in r.stdout.lower()
    assert uncited(r.stdout) == []
    missing = [n for n in NEEDLES.get(" ".join(args), []) if n not in r.stdout]
    assert missing == [], r.stdout


def test_every_listed_help_is_checked():
    assert set(NEEDLES) <= {" ".join(a) for a in every_help_invocation()}


@pytest.mark.parametrize(
    "args, needles",
    [
        (["run", "kernels/saxpy", "--help"],
         ["--max-cost-usd", "Options of kernels/saxpy", "--backend", "cpu|cuda", "default cpu", "--threads",
          "OpenMP threads"]),
        (["run", "--model", "mutate", "examples/circle_packing", "--help"],
         ["Options of examples/circle_packing", "--n", "default 26", "number of circles (>= 1, <= 1000)"]),
        (["tasks", "safety/boat_race"], ["--method", "static|cot|reward_only|epo_safe", "default epo_safe"]),
        (["eval", "ssd/cleanup", "--help"], ["--policy", "--seeds", "Options of ssd/cleanup", "--seed-policy"]),
    ],
)
def test_a_tasks_own_options_are_listed_with_type_default_and_description(args, needles, cli_env, tmp_path):
    r = cli(args, cli_env, tmp_path)
    assert r.returncode == 0, r.stderr
    missing = [n for n in needles if n not in r.stdout]
    assert missing == [], r.stdout


def test_tasks_json_gives_each_option_its_type_default_and_description(cli_env, tmp_path):
    r = cli(["tasks", "kernels/saxpy", "--json"], cli_env, tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    opts = {o["flag"]: o for o in doc["options"]}
    assert opts["--backend"]["type"] == "cpu|cuda" and opts["--backend"]["default"] == "cpu"
    assert opts["--warmup"]["type"] == "int" and opts["--warmup"]["description"] == ">= 0"
    assert "arXiv 2605.09708" in doc["description"]


def test_task_descriptions_cite_papers_not_unpublished_specs(cli_env, tmp_path):
    r = cli(["tasks"], cli_env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "kernels/saxpy" in r.stdout and "ssd/gathering" in r.stdout
    assert uncited(r.stdout.replace("\n", " ")) == []
    assert "§" not in r.stdout


def test_ssd_forwarders_show_the_first_line_of_the_real_commands():
    from synthloop.tasks.ssd.cli import app as ssd_app

    real = typer.main.get_command(ssd_app).commands  # type: ignore[attr-defined]
    assert set(real) == set(SSD_COMMANDS)
    for name, summary in SSD_COMMANDS.items():
        assert (real[name].callback.__doc__ or "").strip().splitlines()[0] == summary


def test_bench_forwarders_reach_every_benchmark_module():
    import importlib

    for module, _ in BENCHMARKS.values():
        assert callable(importlib.import_module(module).main)


def test_bench_kernels_prints_json_on_stdout_and_its_table_on_stderr(cli_env, tmp_path):
    r = cli(["bench", "kernels", "--tasks", "saxpy", "--split", "held", "--warmup", "0", "--measure", "1",
             "--threads", "1"], cli_env, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert doc["backend"] == "cpu" and doc["tasks"]["saxpy"]["held"]["correct"]
    assert "triad bandwidth" in r.stderr and "all seeds correct" in r.stderr
