"""Evaluation protocols and the plain entry point :func:`evaluate_policy`.

Protocols:

* ``self-play``: all N agents run the policy, one episode per seed (the
  reference ran each seed twice as mirrored duplicates; spec §8.2 #9).
* ``reference-mixed``: agents 0 and 1 run the policy, agents 2..N−1 are
  uniform random over ids 0-7 drawing from the environment's generator
  (the reference Q-learning script's baseline protocol, which produced the
  paper's Gathering baseline rows; its default seeds are 9999-10003).
* ``cleanup-script``: all N agents run the policy, but timed-out agents get
  STAND without their policy being called (the reference Cleanup script's
  runner; with random agents this changes the draw stream). Default seeds
  9999-10003, which reproduce its printed baseline rows.

Seeds run in parallel worker processes. Policies are resolved inside the
worker from their spec string (``builtin:<name>``, ``qtable:<path>`` or a
path to a .py file defining ``policy(state, agent_id) -> int``), so user code
never has to be pickled. Loading a user file executes it: this is isolation
by process, not a sandbox (that is a later issue).
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.tasks.ssd import kernels
from synthloop.tasks.ssd.config import GameConfig, normalise_game
from synthloop.tasks.ssd.maps import DEFAULT_MAP, MAP_TEXTS
from synthloop.tasks.ssd.policies import BUILTIN_POLICIES, Policy, RandomPolicy, builtin_policy
from synthloop.tasks.ssd.rules import get_rules
from synthloop.tasks.ssd.runner import run_episode

PROTOCOLS: tuple[str, ...] = ("self-play", "reference-mixed", "cleanup-script")
DEFAULT_SEEDS: dict[str, list[int]] = {
    "self-play": [0, 1, 2, 3, 4],
    "reference-mixed": [9999, 10000, 10001, 10002, 10003],
    "cleanup-script": [9999, 10000, 10001, 10002, 10003],
}
PolicySpec = str | Callable[..., int]


class SSDInputError(ValueError):
    """Bad user input (unknown map, policy, protocol, rules, malformed seeds).
    The message names the problem and the valid choices, one line."""


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` → [0..4]; ``"0,3,7"`` → [0, 3, 7]; mixes like ``"0-2,9"``."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                raise ValueError
            if "-" in part:
                lo, hi = part.split("-", 1)
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                seeds.extend(range(a, b + 1))
            else:
                seeds.append(int(part))
        if any(s < 0 for s in seeds):
            raise ValueError
    except ValueError:
        raise SSDInputError(
            f"malformed seeds {text!r}; use a range like 0-4, a list like 0,3,7, or both (0-2,9)"
        ) from None
    return seeds


def load_policy_file(path: str | Path) -> Policy:
    """Import a .py file and return its ``policy`` callable."""
    path = Path(path)
    if not path.is_file():
        raise SSDInputError(
            f"policy file {str(path)!r} not found; use builtin:<{'|'.join(BUILTIN_POLICIES)}>, "
            "qtable:<path> or a .py file defining policy(state, agent_id)"
        )
    name = f"_ssd_user_policy_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SSDInputError(f"cannot load policy file {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    fn = getattr(module, "policy", None)
    if not callable(fn):
        raise SSDInputError(f"policy file {str(path)!r} defines no callable policy(state, agent_id)")
    return fn


def resolve_policy(spec: PolicySpec, *, load_files: bool = True) -> Policy | None:
    """Turn a policy spec into a callable (see the module docstring).

    With ``load_files=False`` a .py path is only checked for existence and
    None is returned, so the evaluating process never executes user code;
    the workers load it (fresh for every episode, so module globals cannot
    carry state from one episode to the next)."""
    if callable(spec):
        return spec
    text = str(spec)
    if text.startswith("builtin:"):
        try:
            return builtin_policy(text.split(":", 1)[1])
        except KeyError as exc:
            raise SSDInputError(str(exc.args[0])) from None
    if text.startswith("qtable:"):
        from synthloop.tasks.ssd.qlearning import QTablePolicy

        path = text.split(":", 1)[1]
        if not Path(path).is_file():
            raise SSDInputError(f"Q-table file {path!r} not found (train one with `train-q --out PATH`)")
        return QTablePolicy.load(path)
    if text in BUILTIN_POLICIES and not Path(text).exists():
        return builtin_policy(text)
    if text.endswith(".py") or Path(text).exists():
        if not load_files:
            if not Path(text).is_file():
                load_policy_file(text)  # raises the "not found" input error
            return None
        return load_policy_file(text)
    raise SSDInputError(
        f"unknown policy {text!r}; valid: builtin:<{'|'.join(BUILTIN_POLICIES)}>, qtable:<path>, or a .py file"
    )


def population(policy: Policy, protocol: str, n_agents: int) -> list[Policy]:
    """Per-agent policies for a protocol (shared objects define teams)."""
    if protocol in ("self-play", "cleanup-script"):
        return [policy] * n_agents
    if protocol == "reference-mixed":
        rnd = RandomPolicy(8)
        return [policy] * min(2, n_agents) + [rnd] * max(0, n_agents - 2)
    raise SSDInputError(f"unknown protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")


def _episode(job: tuple[GameConfig, str, PolicySpec, str, int]) -> dict[str, Any]:
    config, rules, spec, protocol, seed = job
    try:
        policy = resolve_policy(spec)
        assert policy is not None
        result = run_episode(
            config, population(policy, protocol, config.n_agents), seed, rules,
            call_timed_out=protocol != "cleanup-script",
        )
    except SSDInputError:
        raise
    except Exception as exc:  # one failing episode must not lose the others
        return {"seed": seed, "error": f"{type(exc).__name__}: {exc}"}
    out = result.to_dict()
    if protocol == "reference-mixed":
        out["policy_return"] = float(np.mean(out["returns"][:2]))
    return out


def _mean(episodes: list[dict[str, Any]], n_agents: int) -> dict[str, Any]:
    ok = [e for e in episodes if "error" not in e]
    if not ok:
        return {"errors": len(episodes)}
    keys = [k for k, v in ok[0].items() if k not in ("seed", "returns") and isinstance(v, (int, float))]
    mean: dict[str, Any] = {k: float(np.mean([e[k] for e in ok])) for k in keys}
    mean["reward"] = float(np.mean([np.mean(e["returns"]) for e in ok]))
    mean["episodes"] = len(ok)
    mean["errors"] = len(episodes) - len(ok)
    return mean


def _picklable(obj: Any) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:
        return False
    return True


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork keeps the parent's compiled kernels (no numba reload per worker)
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def evaluate_policy(
    game: str,
    policy: PolicySpec,
    *,
    agents: int = 10,
    map: str | None = None,  # noqa: A002 - the CLI option is called --map
    seeds: Sequence[int] | str | None = None,
    protocol: str = "self-play",
    rules: str = "reference",
    steps: int = 1000,
    workers: int | None = None,
) -> dict[str, Any]:
    """Evaluate ``policy`` and return ``{"episodes": [...], "mean": {...}, ...}``.

    Each episode entry has seed, efficiency, equality, sustainability,
    peace, maximin, returns and behaviour counts (beams fired, agents
    tagged, clean actions, waste cleaned, apples eaten, invalid actions and,
    in Cleanup, mean waste density). ``mean`` averages every numeric field
    and adds ``reward`` (r̄: mean return over agents and episodes).
    Raises :class:`SSDInputError` for bad input.
    """
    try:
        game = normalise_game(game)
    except KeyError as exc:
        raise SSDInputError(str(exc.args[0])) from None
    map_name = map or DEFAULT_MAP[game]
    if map_name not in MAP_TEXTS[game]:
        raise SSDInputError(f"unknown {game} map {map_name!r}; valid maps: {', '.join(MAP_TEXTS[game])}")
    if protocol not in PROTOCOLS:
        raise SSDInputError(f"unknown protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
    try:
        get_rules(rules)
    except KeyError as exc:
        raise SSDInputError(str(exc.args[0])) from None
    if agents < 1 or steps < 1:
        raise SSDInputError("agents and steps must be positive integers")
    if isinstance(seeds, str):
        seeds = parse_seeds(seeds)
    seed_list = list(DEFAULT_SEEDS[protocol] if seeds is None else seeds)
    if not seed_list:
        raise SSDInputError("no seeds given; use e.g. --seeds 0-4")
    resolved = resolve_policy(policy, load_files=False)  # validate early; user files load in workers
    config = GameConfig.for_game(game, map_name, n_agents=agents, max_steps=steps)
    spec: PolicySpec = policy if isinstance(policy, str) or resolved is None else resolved
    jobs = [(config, rules, spec, protocol, int(s)) for s in seed_list]
    n_workers = min(workers or os.cpu_count() or 1, len(jobs))
    # daemonic pool workers may not fork children: run serially there
    nested = multiprocessing.current_process().daemon
    if n_workers > 1 and not nested and _picklable(spec):
        kernels.warm_up()
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=_pool_context()) as pool:
            episodes = list(pool.map(_episode, jobs))
    else:
        episodes = [_episode(job) for job in jobs]
    return {
        "game": game,
        "map": map_name,
        "agents": agents,
        "steps": steps,
        "protocol": protocol,
        "rules": rules,
        "policy": policy if isinstance(policy, str) else getattr(policy, "__name__", repr(policy)),
        "episodes": episodes,
        "mean": _mean(episodes, agents),
    }
