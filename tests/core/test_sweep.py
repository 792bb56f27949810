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
