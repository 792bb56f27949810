"""The ssd command line, driven through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthloop.tasks.ssd.cli import app, cli_eval

runner = CliRunner()


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_eval_json_shape_and_values() -> None:
    res = _json(runner.invoke(app, ["eval", "ssd/gathering", "--policy", "builtin:bfs", "--agents", "10",
                                    "--map", "large", "--seeds", "0,1", "--json", "--workers", "2"]))
    assert [e["seed"] for e in res["episodes"]] == [0, 1]
    e0 = res["episodes"][0]
    for key in ("efficiency", "equality", "sustainability", "peace", "maximin", "returns"):
        assert key in e0
    assert round(e0["efficiency"], 4) == 1.545 and len(e0["returns"]) == 10
    assert res["mean"]["efficiency"] == pytest.approx((1.545 + 2.128) / 2)


def test_eval_user_policy_file(tmp_path: Path) -> None:
    f = tmp_path / "pol.py"
    f.write_text(
        "from synthloop.tasks.ssd.helpers import bfs_nearest_apple, direction_to_action\n"
        "def policy(state, agent_id):\n"
        "    step = bfs_nearest_apple(state, agent_id)\n"
        "    if step is None or state.agent_timeout[agent_id] > 0:\n"
        "        return 7\n"
        "    return direction_to_action(step[0], step[1], int(state.agent_orient[agent_id]))\n"
    )
    res = _json(runner.invoke(app, ["eval", "gathering", "--policy", str(f), "--seeds", "0", "--json", "--steps", "1000"]))
    assert round(res["episodes"][0]["efficiency"], 4) == 1.545


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["eval", "gathering", "--map", "huge"], "valid maps"),
        (["eval", "cleanup", "--map", "large"], "valid maps"),
        (["eval", "gathering", "--policy", "builtin:nope"], "valid"),
        (["eval", "gathering", "--policy", "missing.py"], "not found"),
        (["eval", "gathering", "--protocol", "mirror"], "valid protocols"),
        (["eval", "gathering", "--rules", "nope"], "valid rules"),
        (["eval", "gathering", "--seeds", "4-1"], "malformed seeds"),
        (["eval", "chess"], "valid games"),
        (["render", "gathering", "--map", "huge"], "valid maps"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], needle: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert needle in res.stderr and "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1


def test_cli_eval_function_returns_exit_code() -> None:
    assert cli_eval(["gathering", "--map", "huge"]) == 2


def test_render_writes_gif_and_frames(tmp_path: Path) -> None:
    out = tmp_path / "ep.gif"
    res = _json(runner.invoke(app, ["render", "ssd/cleanup", "--policy", "builtin:cleaner", "--seed", "0",
                                    "--out", str(out), "--frames-dir", str(tmp_path / "f"), "--steps", "5"]))
    assert out.stat().st_size > 0 and res["frames"] == 6 and len(list((tmp_path / "f").glob("*.png"))) == 6


def test_train_q_then_eval_qtable(tmp_path: Path) -> None:
    q = tmp_path / "q.json"
    res = _json(runner.invoke(app, ["train-q", "gathering", "--map", "small", "--agents", "2", "--episodes", "2",
                                    "--steps", "40", "--out", str(q), "--quiet"]))
    assert res["states_visited"] > 0 and q.exists()
    ev = _json(runner.invoke(app, ["eval", "gathering", "--map", "small", "--agents", "2", "--steps", "40",
                                   "--seeds", "0", "--policy", f"qtable:{q}", "--json"]))
    assert "efficiency" in ev["mean"]


def test_reference_mixed_protocol_defaults_to_reference_seeds() -> None:
    res = _json(runner.invoke(app, ["eval", "gathering", "--protocol", "reference-mixed", "--json", "--steps", "20"]))
    assert [e["seed"] for e in res["episodes"]] == [9999, 10000, 10001, 10002, 10003]
    assert "policy_return" in res["episodes"][0]


def test_failing_user_policy_is_reported_per_episode(tmp_path: Path) -> None:
    f = tmp_path / "bad.py"
    f.write_text("def policy(state, agent_id):\n    return 1 // 0\n")
    res = runner.invoke(app, ["eval", "gathering", "--policy", str(f), "--seeds", "0,1", "--json", "--steps", "5"])
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    assert all("ZeroDivisionError" in e["error"] for e in out["episodes"])


def test_user_module_globals_do_not_leak_between_episodes(tmp_path: Path) -> None:
    f = tmp_path / "glob.py"
    f.write_text(
        "CALLS = []\n"
        "def policy(state, agent_id):\n"
        "    CALLS.append(1)\n"
        "    return 7 if len(CALLS) <= 20 else 6\n"
    )
    res = _json(runner.invoke(app, ["eval", "gathering", "--map", "small", "--agents", "2", "--policy", str(f),
                                    "--seeds", "0,1,2", "--json", "--steps", "10", "--workers", "1"]))
    assert [e["beams_fired"] for e in res["episodes"]] == [0, 0, 0]


def test_evaluate_policy_accepts_an_unpicklable_callable() -> None:
    from synthloop.tasks.ssd import evaluate_policy

    res = evaluate_policy("gathering", lambda s, i: 7, map="small", agents=2, seeds=[0, 1], steps=30)
    assert [e["efficiency"] for e in res["episodes"]] == [0.0, 0.0] and res["mean"]["peace"] == 2.0
