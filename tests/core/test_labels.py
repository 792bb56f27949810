"""`mutate` is a baseline, never an LLM: every report of a mutate run says "proposals" and "baseline: mutate",
never "LLM calls", "LLM mutate" or a "$0.0000" that reads as a free model."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from synthloop.config import build_config
from synthloop.report.summary import summarize
from synthloop.runner import execute_run, prepare_run


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "synthloop.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=180)


def test_a_mutate_run_is_a_baseline_in_progress_show_and_html_report(tmp_path, cli_env):
    run_dir = tmp_path / "r"
    run = cli(["run", "examples/constant", "--iterations", "3", "--out", str(run_dir)], cli_env, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "baseline: mutate" in run.stderr and "$" not in run.stderr  # the progress bar has no cost column
    show = cli(["show", str(run_dir)], cli_env, tmp_path)
    assert show.returncode == 0, show.stderr
    assert "synthesizer baseline: mutate (offline, no LLM)" in show.stdout
    calls = summarize(run_dir)["totals"]["calls"]
    assert calls == 3 and f"proposals {calls} by baseline: mutate (no LLM)" in show.stdout
    for wrong in ("LLM calls", "LLM mutate", "$0.0000", "tokens in"):
        assert wrong not in show.stdout and wrong not in run.stdout
    report = cli(["report", str(run_dir)], cli_env, tmp_path)
    assert report.returncode == 0, report.stderr
    page = (run_dir / "report.html").read_text()
    assert "baseline: mutate" in page and "<th>proposals</th>" in page
    assert "LLM calls" not in page and "cost USD" not in page


def test_the_ssd_table_and_report_name_a_mutate_run_baseline_mutate(tmp_path):
    from synthloop.tasks.ssd.report import report
    from synthloop.tasks.ssd.table import table

    data = {"task": "ssd/gathering", "llm": {"model": "mutate"}, "search": {"iterations": 1},
            "task_options": {"seed_policy": True, "agents": 2, "steps": 20, "map": "small", "feedback_seeds": [0],
                             "selection_seeds": [5], "heldout_seeds": [9]},
            "out": str(tmp_path / "ssd")}
    run_dir = prepare_run(build_config(data), announce=lambda line: None)
    assert execute_run(run_dir)["status"] == "completed"
    buf = io.StringIO()
    rows = table([run_dir], baselines=False, out=buf)
    assert {r["method"] for r in rows} == {"baseline: mutate"}
    text = buf.getvalue()
    assert "baseline: mutate" in text and "LLM" not in text
    page = report(run_dir, tmp_path / "rep")[0].read_text()
    assert "proposals 1 by baseline: mutate (no LLM)" in page
    assert "LLM calls" not in page and "$0.0000" not in page
