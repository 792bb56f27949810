"""`synthloop report SWEEP` writes the sweep's report, for social-dilemma sweeps and any other domain."""

from __future__ import annotations

import csv
import subprocess

import pytest
from test_resume import synthloop_cmd

SSD_SWEEP = """\
task: ssd/gathering
task_options: {agents: 2, steps: 20, map: small, seed_policy: true, feedback_seeds: [0], selection_seeds: [100],
               heldout_seeds: [1000]}
llm: {model: mutate}
search: {strategy: refine, iterations: 1}
grid:
  feedback.mode: [sparse, dense]
"""


def cli(args: list[str], env, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(synthloop_cmd() + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.timeout(300)
def test_report_of_an_ssd_sweep_writes_the_table_each_cell_and_an_index(tmp_path, cli_env):
    (tmp_path / "tiny.yaml").write_text(SSD_SWEEP)
    r = cli(["sweep", "tiny.yaml", "--out", "sw"], cli_env, tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli(["report", "sw", "--out", "rep"], cli_env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    rep = tmp_path / "rep"
    cells = ["tiny__mode=sparse__r0", "tiny__mode=dense__r0"]
    for c in cells:
        assert (rep / c / "report.html").read_text().startswith("<!doctype html>")
        assert f"rep/{c}/report.html" in r.stdout
    rows = list(csv.DictReader((rep / "sweep_table.csv").open()))
    llm = [x for x in rows if x["role"] in ("final", "best")]
    assert sorted({x["feedback"] for x in llm}) == ["dense", "sparse"] and all(x["n"] == "1" for x in llm)
    assert any(x["method"].startswith("baseline ") for x in rows)  # the engine's baselines, as `synthloop table`
    assert "dense" in (rep / "sweep_table.txt").read_text()
    index = (rep / "index.html").read_text()
    assert all(f"href='{c}/report.html'" in index for c in cells) and index.count("completed") == 2


def test_report_of_a_sweep_without_a_domain_report_writes_each_cells_report(tmp_path, cli_env):
    (tmp_path / "c.yaml").write_text("task: examples/constant\nllm: {model: mutate}\nsearch: {iterations: 1}\n"
                                     "grid:\n  search.strategy: [refine, best_of_n]\n")
    assert cli(["sweep", "c.yaml", "--out", "sw"], cli_env, tmp_path).returncode == 0
    r = cli(["report", "sw"], cli_env, tmp_path)
    assert r.returncode == 0, r.stderr
    for c in ("c__strategy=refine__r0", "c__strategy=best_of_n__r0"):
        assert (tmp_path / "sw" / c / "report.html").is_file()


def test_report_of_an_empty_sweep_is_a_one_line_error(tmp_path, cli_env):
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "sweep.json").write_text('{"cells": []}')
    r = cli(["report", "sw"], cli_env, tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: sweep 'sw' holds no run yet (no cell has a run.sqlite); run `synthloop sweep` first"]
