"""The policy child's wire protocol and watchdog (:mod:`synthloop.tasks.ssd.policy_sandbox`).

The child rebuilds each step's state from bytes, so every field must reach it exactly: a policy whose
actions depend on all of them must act identically in the child and in-process. Invalid returns are
recorded as -1 and counted; arrays kept in ``memory`` never change afterwards; a call over budget fails
the episode with a diagnosis naming the agent and step, also when the policy swallows the timeout.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.episodes import decode_actions, run_safe_episode, run_unsafe_episode
from synthloop.tasks.ssd.integrity import check_episode
from synthloop.tasks.ssd.policy_api import load_policy, policy_namespace

#: acts on a checksum of every field of the state, so any field that reaches the child wrong shows up
CHECKSUM = '''
def _mix(acc, arr):
    a = np.asarray(arr).astype(np.int64).ravel()
    return (acc * 1000003 + int(np.add.reduce(a * np.arange(1, len(a) + 1)))) % (1 << 61)


def _text(acc, s):
    return _mix(acc, [ord(ch) for ch in str(s)] or [0])


def policy(state, agent_id):
    acc = _text(0, state.game + state.rules)
    for v in (state.step, state.max_steps, state.height, state.width, state.n_agents, state.n_apples,
              state.n_actions, state.beam_length, state.beam_width, state.hits_to_tag, state.timeout_steps,
              int(round(state.waste_density * 1e9)), int(round(state.apple_spawn_prob * 1e9)), agent_id):
        acc = _mix(acc, [v])
    for arr in (state.agent_pos, state.agent_orient, state.agent_timeout, state.agent_beam_hits, state.apple_alive,
                state.apple_pos, state.walls, state.waste, state.river, state.stream, state.river_cells):
        acc = _mix(acc, arr)
        acc = _mix(acc, arr.shape)
    acc = _text(acc, sorted(state.params.items()))
    acc = _text(acc, sorted(state.river_cells_set) + sorted(state.stream_cells_set))
    acc = _mix(acc, state.team)
    seen = state.memory.setdefault("steps", 0)
    state.memory["steps"] = seen + 1
    acc = _mix(acc, [seen])
    return acc % NUM_ACTIONS
'''


def _cfg(game: str, steps: int = 60, n: int = 4) -> GameConfig:
    return GameConfig.for_game(game, "small", n_agents=n, max_steps=steps)


@pytest.mark.parametrize("game", ["gathering", "cleanup"])
def test_child_sees_exactly_the_engines_state(game: str) -> None:
    cfg = _cfg(game)
    child = run_safe_episode(cfg, "reference", CHECKSUM, 5)
    trusted = run_safe_episode(cfg, "reference", load_policy(CHECKSUM, policy_namespace(cfg.n_actions)), 5)
    unsafe = run_unsafe_episode(cfg, "reference", CHECKSUM, 5)
    assert child["ok"] and trusted["ok"] and unsafe["ok"], (child, trusted, unsafe)
    acts = decode_actions(child["actions"], cfg.max_steps, cfg.n_agents)
    assert child["actions"] == trusted["actions"] == unsafe["actions"]
    assert len(np.unique(acts)) > 3  # the checksum really varies: beams, moves, (cleans)
    assert child["returns"] == trusted["returns"]
    v = check_episode(cfg, "reference", 5, child)
    assert v["flags"] == [] and v["replay_match"]


def test_child_state_is_read_only_and_kept_arrays_never_change() -> None:
    code = '''
def policy(state, agent_id):
    if type(state).__name__ != "PolicyState" or not isinstance(state, PolicyState_base):
        raise TypeError(type(state))
    for a in (state.agent_pos, state.agent_orient, state.agent_timeout, state.agent_beam_hits, state.apple_alive,
              state.waste, state.walls, state.apple_pos):
        if a.flags.writeable:
            raise RuntimeError("a state array is writable")
    kept = state.memory.setdefault("kept", [])
    for arr, copy in kept:
        if not np.array_equal(arr, copy):
            raise RuntimeError("an array kept from an earlier step changed")
    kept.append((state.agent_pos, state.agent_pos.copy()))
    kept.append((state.apple_alive, state.apple_alive.copy()))
    return bfs_policy_step(state, agent_id)
'''
    code = code.replace("PolicyState_base", "type(state).__mro__[1]").replace(
        "bfs_policy_step(state, agent_id)", "STAND if bfs_nearest_apple(state, agent_id) is None else "
        "direction_to_action(*bfs_nearest_apple(state, agent_id), int(state.agent_orient[agent_id]))")
    rec = run_safe_episode(_cfg("gathering", 80), "reference", code, 2)
    assert rec["ok"], rec


def test_invalid_returns_are_recorded_as_minus_one_and_counted() -> None:
    cfg = _cfg("gathering", 30, 8)
    code = '''
def policy(state, agent_id):
    return [99, -5, None, 3.5, 1 << 40, 127, 255, 2][agent_id]
'''
    rec = run_safe_episode(cfg, "reference", code, 1)
    assert rec["ok"], rec
    acts = decode_actions(rec["actions"], cfg.max_steps, cfg.n_agents)
    assert (acts[:, :7] == -1).all() and (acts[:, 7] == 2).all()
    assert rec["invalid_actions"] == 7 * cfg.max_steps
    trusted = run_safe_episode(cfg, "reference", load_policy(code, policy_namespace(cfg.n_actions)), 1)
    assert trusted["actions"] == rec["actions"] and trusted["invalid_actions"] == rec["invalid_actions"]
    assert check_episode(cfg, "reference", 1, rec)["flags"] == []


def test_call_over_budget_is_diagnosed_with_agent_and_step() -> None:
    code = '''
def policy(state, agent_id):
    if state.step == 4 and agent_id == 2:
        while True:
            pass
    return STAND
'''
    t0 = time.monotonic()
    rec = run_safe_episode(_cfg("gathering", 20), "reference", code, 0, budget_s=0.3)
    took = time.monotonic() - t0
    assert not rec["ok"] and rec["error_kind"] == "policy_timeout", rec
    assert rec["step"] == 4 and rec["agent"] == 2
    assert "agent 2" in rec["error"] and "step 4" in rec["error"] and "per-call budget of 0.3 s" in rec["error"]
    assert took < 3.0


def test_budget_is_per_call_not_per_step() -> None:
    # every call spins ~0.1 s: a step of 8 calls exceeds the 0.5 s budget, no single call comes close
    code = '''
def policy(state, agent_id):
    if state.step < 2:
        a = np.zeros(1)
        for _ in range(LOOPS):
            a += 1.0
    return STAND
'''
    import timeit

    per_loop = timeit.timeit("a += 1.0", setup="import numpy as np; a = np.zeros(1)", number=20000) / 20000
    loops = max(1000, int(0.1 / per_loop))
    rec = run_safe_episode(_cfg("gathering", 3, 8), "reference", code.replace("LOOPS", str(loops)), 0, budget_s=0.5)
    assert rec["ok"], rec


def test_swallowed_timeouts_still_end_the_episode() -> None:
    code = '''
def policy(state, agent_id):
    if state.step == 1:
        while True:
            try:
                while True:
                    pass
            except BaseException:
                pass
    return STAND
'''
    t0 = time.monotonic()
    rec = run_safe_episode(_cfg("gathering", 10, 2), "reference", code, 0, budget_s=0.2)
    assert not rec["ok"] and rec["error_kind"] == "policy_timeout", rec
    assert rec["step"] == 1 and time.monotonic() - t0 < 5.0


@pytest.mark.parametrize("code,needle", [("def policy(state, agent_id)\n    return 0\n", "SyntaxError"),
                                         ("x = 1\n", "no callable `policy"),
                                         ("raise ValueError('boom')\n", "ValueError: boom")])
def test_load_failures_are_reported(code: str, needle: str) -> None:
    rec = run_safe_episode(_cfg("gathering", 5), "reference", code, 0)
    assert not rec["ok"] and rec["error_kind"] == "policy_load" and needle in rec["error"], rec


def test_ndarray_methods_work_in_policies_of_a_fresh_process() -> None:
    # numpy imports the helpers of ndarray.sum()/.mean()/repr() on first use, through the calling frame's
    # builtins, which policy frames lack; a fresh process must not fail the policy's first call on that
    script = '''
import os, sys
from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.episodes import run_safe_episode, run_unsafe_episode
cfg = GameConfig.for_game("gathering", "small", n_agents=2, max_steps=3)
code = """
def policy(state, agent_id):
    a = state.agent_pos
    a.sum() + a.mean() + a.std() + a.var() + a.max() + a.min() + a.prod() + state.apple_alive.any()
    repr(a)
    return STAND
"""
for run in (run_safe_episode, run_unsafe_episode):
    pid = os.fork()
    if pid == 0:
        rec = run(cfg, "reference", code, 0)
        print(run.__name__, rec["ok"], rec.get("error", ""), flush=True)
        os._exit(0 if rec["ok"] else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0, run.__name__
'''
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
