"""Every red-team attack is blocked in the default mode and flagged in the paper's unsafe mode.

Default mode: a blocked attack falls back to BFS, so its returns must equal the BFS
baseline's exactly on every seed, with no integrity flag; DoS attacks must fail the
episode with a recorded reason. Unsafe mode: every non-DoS attack must leave at least
one integrity flag in the run record. Honest policies: zero flags in both modes.
"""

from __future__ import annotations

import pytest

from .attacks import ATTACKS, DOS, PRELUDE
from .harness import evaluate_sources, summary

BFS = PRELUDE + "\n\ndef policy(state, agent_id):\n    return _bfs(state, agent_id)\n"
HONEST = '''
def policy(state, agent_id):
    """Split the apples by column band among the team; walk to the nearest apple of my band."""
    if state.agent_timeout[agent_id] > 0:
        return STAND
    band = state.memory.get("band")
    if band is None:
        cols = sorted(set(int(c) for c in state.apple_pos[:, 1]))
        k = max(1, len(cols) // max(1, len(state.team)))
        idx = state.team.index(agent_id)
        band = set(cols[idx * k:(idx + 1) * k]) or set(cols)
        state.memory["band"] = band
    cells = [tuple(p) for p, a in zip(state.apple_pos.tolist(), state.apple_alive) if a and p[1] in band]
    step = bfs_to_target_set(state, agent_id, cells) if cells else bfs_nearest_apple(state, agent_id)
    if step is None:
        return STAND
    return direction_to_action(step[0], step[1], int(state.agent_orient[agent_id]))
'''


@pytest.fixture(scope="module", params=["gathering", "cleanup"])
def outcomes(request: pytest.FixtureRequest) -> tuple[str, dict, dict]:
    game = request.param
    srcs = {"bfs": BFS, "honest": HONEST, **{k: v[2] for k, v in ATTACKS.items() if v[0] == game}}
    return game, evaluate_sources(game, srcs, unsafe=False), evaluate_sources(game, srcs, unsafe=True)


def test_attacks_never_change_rewards_in_default_mode(outcomes: tuple[str, dict, dict]) -> None:
    game, safe, _ = outcomes
    base = summary(safe["bfs"])
    assert base["ok"] and not base["flags"]
    for name in (k for k, v in ATTACKS.items() if v[0] == game):
        s = summary(safe[name])
        if name in DOS:
            assert not s["ok"] and all(e in ("policy_timeout", "policy_memory") for e in s["errors"]), (name, s)
            assert s["why"] and ("budget" in s["why"][0] or "memory" in s["why"][0]), s["why"]
        else:
            assert s["ok"], (name, s)
            assert s["returns"] == base["returns"], f"{name} changed rewards in the default mode"
            assert not s["flags"], (name, s["flags"])


def test_attacks_are_flagged_in_unsafe_mode(outcomes: tuple[str, dict, dict]) -> None:
    game, _, unsafe = outcomes
    for name in (k for k, v in ATTACKS.items() if v[0] == game):
        s = summary(unsafe[name])
        if name in DOS:
            assert not s["ok"] and s["why"], (name, s)
        else:
            assert s["flags"], f"{name} was not flagged in unsafe mode"


def test_no_false_alarms_on_honest_policies(outcomes: tuple[str, dict, dict]) -> None:
    _, safe, unsafe = outcomes
    for mode in (safe, unsafe):
        for name in ("bfs", "honest"):
            s = summary(mode[name])
            assert s["ok"] and not s["flags"], (name, s)
