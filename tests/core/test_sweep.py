"""Sweeps: grid x repeats become ordinary run directories; a rerun resumes instead of redoing."""

import json

import pytest

from synthloop.config import ConfigError
from synthloop.sweep import expand, run_sweep


def test_grid_expands_to_product(tmp_path):
    p = tmp_path / "g.yaml"
    p.write_text("task: examples/constant\ngrid:\n  search.strategy: [refine, best_of_n]\n  search.iterations: [1, 2]\n")
    cells = expand(p, [], {})
    assert len(cells) == 4
    assert {(c["search"]["strategy"], c["search"]["iterations"]) for _, c in cells} == {
        ("refine", 1), ("refine", 2), ("best_of_n", 1), ("best_of_n", 2)}


def test_bad_grid_key_is_a_config_error(tmp_path):
    p = tmp_path / "g.yaml"
    p.write_text("task: examples/constant\ngrid:\n  search.nope: [1]\n")
    with pytest.raises(ConfigError):
        expand(p, [], {})


def test_sweep_runs_repeats_and_resumes(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("task: examples/constant\nllm: {model: mutate}\nsearch: {iterations: 2}\n")
    index = json.loads(run_sweep([p], tmp_path / "out", repeats=2, announce=lambda m: None).read_text())
    assert [c["status"] for c in index["cells"]] == ["completed", "completed"]
    seeds = []
    for c in index["cells"]:
        cfg = (tmp_path / "out" / f"s__r{c['repeat']}" / "config.yaml").read_text()
        seeds.append([ln for ln in cfg.splitlines() if ln.strip().startswith("seed:")][0])
    assert seeds[0] != seeds[1]  # repeats differ in their seeds
    said: list[str] = []
    run_sweep([p], tmp_path / "out", repeats=2, announce=said.append)
    assert all("already completed" in m for m in said)


def test_cli_sweep_says_the_offline_notice_once_and_one_score_line_per_cell(tmp_path, cli_env):
    """Three mutate cells: the "model: mutate" notice once, then one line per cell as it finishes, with its name,
    repeat, best score, proposals by the baseline (never "LLM calls") and run directory; sweep.json agrees."""
    import subprocess
    import sys

    cfg = tmp_path / "c.yaml"
    cfg.write_text("task: examples/constant\ngrid:\n  search.iterations: [1, 2, 3]\n")
    out = tmp_path / "sw"
    r = subprocess.run([sys.executable, "-m", "synthloop.cli", "sweep", str(cfg), "--out", str(out)], env=cli_env,
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stderr.splitlines()
    assert sum(ln.startswith("model: mutate") for ln in lines) == 1, r.stderr
    cell_lines = [ln for ln in lines if ln.startswith("[")]
    index = json.loads((out / "sweep.json").read_text())
    assert len(cell_lines) == len(index["cells"]) == 3
    for line, cell in zip(cell_lines, index["cells"]):
        n = int(cell["name"].rsplit("=", 1)[1])
        assert line.startswith(f"[{cell['name']} r0] best {cell['best']:.6g} value · ")
        assert f"proposals {n} by baseline: mutate (no LLM)" in line and line.endswith(f"· completed · {cell['run_dir']}")
        assert cell["proposals"] == n and cell["baseline"] is True and cell["synthesizer"].startswith("baseline: mutate")
    assert "LLM calls" not in r.stderr and "$0.0000" not in r.stderr


def test_a_failed_cell_says_why_in_its_line_and_the_sweep_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-sent")
    p = tmp_path / "f.yaml"
    p.write_text("task: examples/constant\nsearch: {iterations: 1}\nllm: {max_attempts: 1}\ngrid:\n"
                 "  llm.model: ['openai/x', mutate]\n  llm.base_url: ['http://127.0.0.1:1/v1']\n")
    said: list[str] = []
    index = json.loads(run_sweep([p], tmp_path / "out", announce=said.append).read_text())
    assert [c["status"] for c in index["cells"]] == ["failed", "completed"]
    failed, done = [m for m in said if m.startswith("[")]
    assert "failed: cannot reach http://127.0.0.1:1/v1: connection refused" in failed
    assert "LLM calls 1 (1 failed)" in failed and index["cells"][0]["error"] in failed
    assert "best " in done and "baseline: mutate" in done
