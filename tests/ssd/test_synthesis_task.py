"""Task-level pins: the brief is generated from the live configuration; the validator's messages; no false
integrity alarms on the engine's baselines in either mode; the table over finished runs."""

from __future__ import annotations

import pytest

from synthloop.core.types import Artifact
from synthloop.tasks.registry import make_task
from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.episodes import run_safe_episode, run_unsafe_episode
from synthloop.tasks.ssd.integrity import check_episode
from synthloop.tasks.ssd.policies import builtin_policy
from synthloop.tasks.ssd.prompts import STATE_FIELDS
from synthloop.tasks.ssd.state import PolicyState
from synthloop.tasks.ssd.table import mean_ci


def test_brief_numbers_come_from_the_configuration() -> None:
    t = make_task("ssd/cleanup", {"agents": 7, "steps": 321})
    b = t.brief()
    assert "7 agents on a" in b and "321 steps" in b and "CLEAN=8" in b and "BEAM (id 6) costs the firer 1" in b
    g = make_task("ssd/gathering", {}).brief()
    assert "10 agents on a" in g and "1000 steps" in g and "CLEAN" not in g.split("Action ids:")[1].split("\n")[0]
    assert "respawns exactly 25 steps later" in g
    for names in STATE_FIELDS:
        for name in names.split(", "):
            assert name in PolicyState.__slots__


def test_validator_messages_are_precise() -> None:
    t = make_task("ssd/gathering", {"steps": 10})
    probs = t.validate(Artifact("import os\ndef policy(s, a):\n    return open('x').__class__\n"))
    assert any("line 1" in p and "imports" in p for p in probs)
    assert any("open(...)" in p for p in probs) and any("__class__" in p for p in probs)
    assert t.validate(Artifact("def policy(state):\n    return 7\n"))[0].startswith("line 1: policy must take")


@pytest.mark.parametrize("game,names", [("gathering", ["bfs", "cooperative", "exploitative"]),
                                        ("cleanup", ["collector", "cleaner", "threshold"])])
def test_no_false_alarms_on_baselines(game: str, names: list[str]) -> None:
    cfg = GameConfig.for_game(game, "small", n_agents=4, max_steps=120)
    for name in names:
        pol = builtin_policy(name)
        for runner in (run_safe_episode, run_unsafe_episode):
            rec = runner(cfg, "reference", pol, 3)
            assert rec["ok"], rec
            v = check_episode(cfg, "reference", 3, rec)
            assert v["flags"] == [] and v["replay_match"], (name, runner.__name__, v["flags"])


def test_forged_record_is_caught() -> None:
    cfg = GameConfig.for_game("gathering", "small", n_agents=4, max_steps=50)
    rec = run_safe_episode(cfg, "reference", builtin_policy("bfs"), 1)
    rec["returns"] = [r + 10 for r in rec["returns"]]
    v = check_episode(cfg, "reference", 1, rec)
    assert not v["replay_match"] and any("replay mismatch" in f for f in v["flags"])


def test_mean_ci() -> None:
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and abs(h - 4.302653 / 3 ** 0.5) < 1e-5  # t(0.975, df=2) = 4.302653
    assert mean_ci([5.0]) == (5.0, 0.0)
