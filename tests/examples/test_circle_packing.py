"""Circle packing: the strict validator, and the README's main job (mutate must beat the seed)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from synthloop.tasks.examples.circle_packing import CirclePacking, validate_packing


def grid(n_side: int, r: float):
    step = 1 / n_side
    return [[step / 2 + i * step, step / 2 + j * step, r] for i in range(n_side) for j in range(n_side)]


def test_validator_accepts_a_tight_valid_packing():
    ok, _, m = validate_packing(grid(5, 0.1)[:25] + [[0.2, 0.2, math.sqrt(2) * 0.1 - 0.1 - 1e-12]], 26, 1e-9)
    assert ok and m["sum_radii"] > 2.54


def test_validator_rejects_overlap_beyond_tolerance():
    circles = grid(5, 0.1) + [[0.2, 0.2, 0.05]]
    ok, diags, _ = validate_packing(circles, 26, 1e-9)
    assert not ok and any("overlap" in d for d in diags)


def test_validator_rejects_tiny_overlap_just_over_tolerance():
    circles = grid(5, 0.1)[:25] + [[0.2, 0.2, math.sqrt(2) * 0.1 - 0.1 + 2e-9]]
    assert not validate_packing(circles, 26, 1e-9)[0]


def test_validator_rejects_outside_square_nan_wrong_count_and_garbage():
    c = grid(5, 0.1) + [[0.99, 0.5, 0.05]]
    assert not validate_packing(c, 26, 1e-9)[0]
    assert not validate_packing(grid(5, 0.1) + [[float("nan"), 0.5, 0.01]], 26, 1e-9)[0]
    assert not validate_packing(grid(5, 0.1), 26, 1e-9)[0]
    assert not validate_packing("4.01", 26, 1e-9)[0]
    assert not validate_packing([[0.5, 0.5]] * 26, 26, 1e-9)[0]
    assert not validate_packing(grid(5, 0.1) + [[0.2, 0.2, -0.01]], 26, 1e-9)[0]


def test_the_sum_4_01_packing_peers_accepted_is_rejected():
    # 26 circles of radius ~0.154 cannot fit; a lax evaluator credited such packings
    circles = [[0.2 + 0.03 * i, 0.5, 4.01 / 26] for i in range(26)]
    assert not validate_packing(circles, 26, 1e-9)[0]


def test_seed_is_valid_and_below_reference():
    t = CirclePacking()
    case = t.pools().feedback[0]
    res = t.judge(t.seed(), case, t.run(t.seed(), case))
    assert res.ok and 2.0 < res.score < t.reference[0]


def test_readme_main_job_mutate_beats_the_seed(tmp_path):
    env_cmd = [sys.executable, "-m", "synthloop.cli", "run", "examples/circle_packing", "--iterations", "50",
               "--out", str(tmp_path / "run"), "-q", "--json"]
    import os

    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "SYNTHLOOP_MODEL"}
    env["OLLAMA_HOST"] = "127.0.0.1:9"
    r = subprocess.run(env_cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "mutate" in r.stderr  # the fallback is announced in one line
    s = json.loads(r.stdout)
    assert s["synthesizer"]["kind"] == "baseline"
    seed = s["candidates"][0]["selection_score"]
    assert s["best"]["selection_score"] > seed
    assert (tmp_path / "run" / "progress.png").is_file()
