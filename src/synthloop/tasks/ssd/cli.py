"""Command line for the social-dilemma games (``synthloop ssd ...``).

Commands: ``eval``, ``render``, ``train-q``, ``bench`` and ``gepa`` (the GEPA
prompt-optimisation baseline, :mod:`.gepa_baseline`). Bad input prints
one line naming the problem and the valid choices on stderr and exits with
code 2, without a traceback. ``invoke(command, argv)`` (and ``cli_eval(argv)``
etc.) run a command from an argument list and return its exit code: the main
CLI registers light forwarders (synthloop.cli_forward) that import this module,
and with it the numba engine, only when a command runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import typer

from synthloop.tasks.ssd.evaluate import PROTOCOLS, SSDInputError, evaluate_policy, parse_seeds
from synthloop.tasks.ssd.rules import RULE_NAMES

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Sequential social dilemmas: Gathering and Cleanup.")


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


def _guard(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` turning input errors into the one-line, exit-2 contract."""
    try:
        return fn()
    except SSDInputError as exc:
        _fail(str(exc))
    except KeyError as exc:
        _fail(str(exc.args[0]) if exc.args else "unknown name")
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))


def _seeds(text: str | None) -> list[int] | None:
    return None if text is None else _guard(lambda: parse_seeds(text))


@app.command("eval")
def eval_cmd(
    game: str = typer.Argument(..., help="gathering or cleanup (ssd/ prefix accepted)"),
    policy: str = typer.Option("builtin:bfs", "--policy", help="builtin:<name>, qtable:<path> or path/to/policy.py"),
    agents: int = typer.Option(10, "--agents", help="number of agents"),
    map_name: str | None = typer.Option(None, "--map", help="gathering: large|default|small; cleanup: standard|small"),
    seeds: str | None = typer.Option(None, "--seeds", help="e.g. 0-4 or 0,3,7 (default: 0-4; reference-mixed: 9999-10003)"),
    steps: int = typer.Option(1000, "--steps", help="episode length"),
    protocol: str = typer.Option("self-play", "--protocol", help=f"one of {', '.join(PROTOCOLS)}"),
    rules: str = typer.Option("reference", "--rules", help=f"one of {', '.join(RULE_NAMES)} (combine with +)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    workers: int | None = typer.Option(None, "--workers", help="worker processes (default: all cores)"),
) -> None:
    """Evaluate a policy over seeds and print the social metrics."""
    seed_list = _seeds(seeds)
    result = _guard(lambda: evaluate_policy(
        game, policy, agents=agents, map=map_name, seeds=seed_list, protocol=protocol,
        rules=rules, steps=steps, workers=workers,
    ))
    failed = all("error" in e for e in result["episodes"])
    if as_json:
        typer.echo(json.dumps(result))
        if failed:
            raise typer.Exit(1)
        return
    typer.echo(f"{result['game']} map={result['map']} agents={agents} protocol={protocol} rules={rules} policy={policy}")
    typer.echo(f"{'seed':>6} {'U':>8} {'E':>8} {'S':>9} {'P':>7} {'maximin':>8}")
    for e in result["episodes"]:
        if "error" in e:
            typer.echo(f"{e['seed']:>6} error: {e['error']}")
            continue
        typer.echo(
            f"{e['seed']:>6} {e['efficiency']:8.3f} {e['equality']:8.4f} {e['sustainability']:9.3f} "
            f"{e['peace']:7.3f} {e['maximin']:8.1f}"
        )
    m = result["mean"]
    if "efficiency" in m:
        typer.echo(
            f"{'mean':>6} {m['efficiency']:8.3f} {m['equality']:8.4f} {m['sustainability']:9.3f} "
            f"{m['peace']:7.3f} {m['maximin']:8.1f}   r̄={m['reward']:.2f}"
        )
    if failed:
        raise typer.Exit(1)


@app.command("render")
def render_cmd(
    game: str = typer.Argument(..., help="gathering or cleanup (ssd/ prefix accepted)"),
    policy: str = typer.Option("builtin:bfs", "--policy", help="builtin:<name>, qtable:<path> or path/to/policy.py"),
    seed: int = typer.Option(0, "--seed", help="episode seed"),
    out: str = typer.Option("episode.gif", "--out", help="GIF path"),
    frames_dir: str | None = typer.Option(None, "--frames-dir", help="also write PNG frames here"),
    steps: int = typer.Option(200, "--steps", help="episode length"),
    agents: int = typer.Option(10, "--agents", help="number of agents"),
    map_name: str | None = typer.Option(None, "--map", help="gathering: large|default|small; cleanup: standard|small"),
    rules: str = typer.Option("reference", "--rules", help=f"one of {', '.join(RULE_NAMES)} (combine with +)"),
    protocol: str = typer.Option("self-play", "--protocol", help=f"one of {', '.join(PROTOCOLS)}"),
    cell_size: int = typer.Option(12, "--cell-size", help="pixels per grid cell"),
) -> None:
    """Write an animated GIF of one episode (god's-eye view, beams visible)."""
    from synthloop.tasks.ssd.config import GameConfig
    from synthloop.tasks.ssd.evaluate import population, resolve_policy
    from synthloop.tasks.ssd.render import render_episode
    from synthloop.tasks.ssd.rules import get_rules

    def check() -> None:  # validate everything before playing
        GameConfig.for_game(game, map_name, n_agents=agents, max_steps=steps)
        get_rules(rules)
        population(resolve_policy(policy), protocol, agents)

    _guard(check)
    res = _guard(lambda: render_episode(
        game, policy, seed=seed, out=out, frames_dir=frames_dir, agents=agents, map_name=map_name,
        steps=steps, rules=rules, protocol=protocol, cell_size=cell_size,
    ))
    typer.echo(json.dumps({"gif": res["gif"], "frames": res["frames"], "png_frames": len(res["png_frames"])}))


@app.command("train-q")
def train_q_cmd(
    game: str = typer.Argument(..., help="gathering or cleanup"),
    out: str = typer.Option("qtable.json", "--out", help="where to save the Q-table"),
    episodes: int = typer.Option(1000, "--episodes"),
    agents: int = typer.Option(10, "--agents"),
    map_name: str | None = typer.Option(None, "--map"),
    steps: int = typer.Option(1000, "--steps"),
    eps_decay: int | None = typer.Option(None, "--eps-decay", help="episodes of ε decay (default 100 / 200)"),
    seed: int = typer.Option(40, "--seed", help="learner seed; episode e resets with seed + e"),
    rules: str = typer.Option("reference", "--rules"),
    quiet: bool = typer.Option(False, "--quiet"),
) -> None:
    """Train the shared tabular Q-learner with cooperative reward shaping and save the table.

    The baseline of arXiv 2603.19453; evaluate the table later with `eval --policy qtable:PATH`."""
    from synthloop.tasks.ssd.config import GameConfig
    from synthloop.tasks.ssd.qlearning import train
    from synthloop.tasks.ssd.rules import get_rules

    _guard(lambda: (GameConfig.for_game(game, map_name, n_agents=agents, max_steps=steps), get_rules(rules)))

    def progress(ep: int, eff: float) -> None:
        if not quiet and (ep % 10 == 0 or ep == episodes - 1):
            typer.echo(f"episode {ep + 1}/{episodes}  U={eff:.3f}", err=True)

    q = _guard(lambda: train(
        game, episodes=episodes, agents=agents, map_name=map_name, steps=steps,
        eps_decay_episodes=eps_decay, seed=seed, rules=rules, progress=progress,
    ))
    q.save(out)
    typer.echo(json.dumps({"qtable": out, **q.meta}))


@app.command("bench")
def bench_cmd(
    steps: int = typer.Option(5000, "--steps", help="steps per STAND measurement"),
    cold: bool = typer.Option(True, "--cold/--no-cold", help="also time a fresh-interpreter evaluation"),
) -> None:
    """Throughput benchmark; prints one JSON object."""
    from synthloop.tasks.ssd.bench import run_benchmark

    typer.echo(json.dumps(run_benchmark(steps=steps, cold=cold, progress=lambda line: typer.echo(line, err=True)),
                          indent=2))


@app.command("gepa")
def gepa_cmd(
    game: str = typer.Argument(..., help="gathering or cleanup (ssd/ prefix accepted)"),
    model: str | None = typer.Option(None, "--model", help="openai/<m>, anthropic/<m>, ollama/<m> or replay:<dir>;"
                                     " writes the policies and reflects (default as `synthloop run`)"),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL"),
    budget: int = typer.Option(4, "--budget", help="evaluations; one = a policy on every feedback and selection seed,"
                               " what one candidate of `synthloop run` costs (`--iterations K` spends K+1)"),
    minibatch: int | None = typer.Option(None, "--minibatch", help="feedback seeds per reflection minibatch"
                                         " (default: all)"),
    selection: str = typer.Option("pareto", "--candidate-selection", help="pareto, current_best, epsilon_greedy"
                                  " or top_k_pareto"),
    feedback: str = typer.Option("sparse", "--feedback", help="what the reflection sees: sparse (reward, as the"
                                 " reference) or dense (plus the social metrics)"),
    failure_score: float = typer.Option(0.0, "--failure-score", help="score of a seed whose policy failed"),
    gepa_seed: int = typer.Option(0, "--seed", help="GEPA's random seed"),
    agents: int | None = typer.Option(None, "--agents", help="number of agents (default 10)"),
    steps: int | None = typer.Option(None, "--steps", help="episode length (default 1000)"),
    map_name: str | None = typer.Option(None, "--map", help="gathering: large|default|small; cleanup: standard|small"),
    rules: str | None = typer.Option(None, "--rules", help=f"one of {', '.join(RULE_NAMES)} (combine with +)"),
    feedback_seeds: str | None = typer.Option(None, "--feedback-seeds", help="GEPA's trainset, e.g. 0-4"),
    selection_seeds: str | None = typer.Option(None, "--selection-seeds", help="GEPA's valset, e.g. 100-104"),
    heldout_seeds: str | None = typer.Option(None, "--heldout-seeds", help="scored once at the end, e.g. 1000-1004"),
    episode_wall_s: float | None = typer.Option(None, "--episode-wall-s", help="wall limit of one episode"),
    call_budget_s: float | None = typer.Option(None, "--call-budget-s", help="time budget of one policy call"),
    temperature: float | None = typer.Option(None, "--temperature"),
    max_tokens: int | None = typer.Option(None, "--max-tokens"),
    max_attempts: int | None = typer.Option(None, "--max-attempts", help="tries per LLM call before it counts as"
                                            " failed (transient errors are retried with backoff; default 5)"),
    retries: int | None = typer.Option(None, "--retries", help="re-asks after an answer with no usable policy (2)"),
    max_cost_usd: float | None = typer.Option(None, "--max-cost-usd", help="stop when LLM spend reaches this"),
    max_llm_calls: int | None = typer.Option(None, "--max-llm-calls", help="stop after this many LLM calls"),
    max_wall: float | None = typer.Option(None, "--max-wall", help="stop after this many seconds"),
    workers: int | None = typer.Option(None, "--workers", help="sandboxed worker processes"),
    run_dir: str | None = typer.Option(None, "--run-dir", "--out", help="run directory (default runs/<run-id>-gepa)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no per-iteration lines"),
    as_json: bool = typer.Option(False, "--json", help="print the result JSON"),
) -> None:
    """GEPA baseline: optimise only the system prompt with the `gepa` package (docs/gepa_baseline.md).

    Same model, budget and seed pools as `synthloop run ssd/<game>`; held-out seeds scored once at the end."""
    from synthloop.config import ConfigError, build_config
    from synthloop.tasks.ssd.config import normalise_game
    from synthloop.tasks.ssd.gepa_baseline import GEPASettings, execute_gepa, prepare_gepa, summary_line

    def prepare() -> Any:
        from pydantic import ValidationError

        from synthloop.llm.factory import resolve_model

        name = normalise_game(game)
        if feedback not in ("sparse", "dense"):
            raise ConfigError(f"unknown feedback {feedback!r}; valid: sparse, dense")
        opts: dict[str, Any] = {k: v for k, v in {
            "agents": agents, "steps": steps, "map": map_name, "rules": rules, "episode_wall_s": episode_wall_s,
            "call_budget_s": call_budget_s, "feedback_seeds": _seeds(feedback_seeds),
            "selection_seeds": _seeds(selection_seeds), "heldout_seeds": _seeds(heldout_seeds)}.items()
            if v is not None}
        try:
            settings = GEPASettings(budget=budget, minibatch=minibatch, candidate_selection=selection,
                                    failure_score=failure_score, seed=gepa_seed)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"]).replace("_", "-")
            raise ConfigError(f"bad --{where}: {err['msg']}") from None
        chosen, line = resolve_model(model)
        if model is None:
            typer.echo(line, err=True)
        llm = {k: v for k, v in {"model": chosen, "base_url": base_url, "temperature": temperature,
                                  "max_tokens": max_tokens, "max_attempts": max_attempts}.items() if v is not None}
        data: dict[str, Any] = {
            "task": f"ssd/{name}", "task_options": opts, "feedback": {"mode": feedback}, "llm": llm,
            "budget": {k: v for k, v in {"max_cost_usd": max_cost_usd, "max_llm_calls": max_llm_calls,
                                         "max_wall_s": max_wall}.items() if v is not None},
            "execution": {"workers": workers} if workers is not None else {},
            "search": {"retries": retries} if retries is not None else {},
            "out": run_dir,
        }
        return prepare_gepa(build_config(data), settings)

    path = _guard(prepare)
    typer.echo(f"run directory: {path}", err=True)
    result = execute_gepa(path, None if quiet else (lambda line: typer.echo(line, err=True)))
    if as_json:
        typer.echo(json.dumps(result, default=str))
    else:
        typer.echo(summary_line(result))
        typer.echo(f"result: {path / 'gepa_result.json'}")
    if result["status"].startswith("failed"):
        raise typer.Exit(1)


def invoke(command: str, argv: list[str], prog: str = "synthloop ssd") -> int:
    """Run ``synthloop ssd COMMAND ARGV`` and return its exit code (help 0, usage or input error 2, one line)."""
    from synthloop.cli_exit import invoke as invoke_app

    return invoke_app(app, [command, *argv], prog)


def cli_eval(argv: list[str]) -> int:
    """``synthloop eval ssd/<game> ...`` forwards here; returns the exit code."""
    return invoke("eval", argv)


def cli_render(argv: list[str]) -> int:
    """``synthloop render ssd/<game> ...`` forwards here; returns the exit code."""
    return invoke("render", argv)


def cli_train_q(argv: list[str]) -> int:
    return invoke("train-q", argv)


def cli_bench(argv: list[str]) -> int:
    return invoke("bench", argv)


def cli_gepa(argv: list[str]) -> int:
    return invoke("gepa", argv)


def main() -> None:  # pragma: no cover - manual entry point
    from synthloop.cli import main as cli_main

    cli_main(["ssd", *sys.argv[1:]])


if __name__ == "__main__":  # pragma: no cover
    main()
