"""The safety report (curves, specification diffs, noise heat map), the sweep, and the core safety channel."""

from __future__ import annotations

import json

import pytest
from safety_scripted import SCRIPTS, scripted_agent

from synthloop.core.types import Evaluation
from synthloop.oversight.channels import DangerSignal, SafetyChannel, attach, read
from synthloop.tasks.safety.report import main, report
from synthloop.tasks.safety.sweep import sweep, sweep_main

PNG = b"\x89PNG"


def test_report_of_a_scripted_run_has_curves_diffs_and_heldout_r_star(harness, tmp_path):
    run_dir = harness("side_effects").run("side_effects", method="epo_safe")
    files = report(run_dir, tmp_path / "rep")
    names = {f.name for f in files}
    assert names == {"rounds.json", "spec_evolution.md", "curves.png"}
    assert (tmp_path / "rep" / "curves.png").read_bytes()[:4] == PNG
    data = json.loads((tmp_path / "rep" / "rounds.json").read_text())
    assert [(r["mean_reward"], r["mean_performance"]) for r in data["rounds"]] == [(45, 35), (43, 43), (43, 43)]
    md = (tmp_path / "rep" / "spec_evolution.md").read_text()
    assert f"+2. {SCRIPTS['side_effects'][0]}." in md and "```diff" in md and "(unchanged)" in md
    assert "| 1 | 45.00 | 35.00 | 3 | 3 | 3 |" in md
    assert "| final | 3 | 43.00 | 43.00 | 43.00 | 0.00 |" in md and "| best | 1 | 45.00 | 45.00 | 35.00 |" in md
    assert main([str(run_dir), "--out", str(tmp_path / "cli")]) == 0 and (tmp_path / "cli" / "curves.png").exists()
    assert main([str(tmp_path / "nothing-here")]) == 2


def test_sweep_runs_the_grid_and_the_report_draws_the_noise_heat_map(harness, tmp_path):
    h = harness("side_effects", scripted_agent(None))
    out = tmp_path / "sweep"
    index = sweep(["side_effects", "text_side_effects"], ["epo_safe"], [0.0, 0.5],
                  {"rounds": 2, "episodes": 2, "heldout_episodes": 0}, "openai/fake", out,
                  run_config={"llm": {"base_url": h.server.base_url, "max_attempts": 1}}, announce=lambda s: None)
    cells = json.loads(index.read_text())["cells"]
    assert [(c["env"], c["rate"], c["status"]) for c in cells] == [
        ("side_effects", 0.0, "completed"), ("side_effects", 0.5, "completed"),
        ("text_side_effects", 0.0, "completed"), ("text_side_effects", 0.5, "completed")]
    calls = len(h.server.bodies)
    assert sweep_main(["--envs", "side_effects", "--methods", "epo_safe", "--rates", "0,0.5", "--rounds", "2",
                       "--episodes", "2", "--heldout-episodes", "0", "--model", "openai/fake", "--base-url",
                       h.server.base_url, "--out", str(out), "--report"]) == 0
    assert len(h.server.bodies) == calls  # an existing sweep resumes: finished cells make no new calls
    summary = json.loads((out / "report" / "sweep_summary.json").read_text())
    cells = summary["normalised_performance"]["epo_safe"]["normalised"]
    assert cells["side_effects"]["0"] == 1.0 and cells["text_side_effects"]["0"] == 1.0
    assert cells["side_effects"]["0.5"] == pytest.approx(1.0)  # the agent learns the rule despite the noise
    assert (out / "report" / "noise_heatmap_epo_safe.png").read_bytes()[:4] == PNG
    assert sweep_main(["--envs", "nowhere", "--model", "openai/fake", "--out", str(out)]) == 2


def test_safety_channel_keeps_truth_and_reports_apart_and_never_touches_the_score():
    ch = SafetyChannel(granularity="episode", false_positive_rate=0.25, signals=(
        DangerSignal("e0", steps=4, true_steps=(2,), reported_steps=(2, 3)),
        DangerSignal("e1", steps=4, true_steps=(), reported_steps=())))
    assert (ch.true_violations, ch.reported_warnings, ch.spurious_warnings) == (1, 2, 1)
    assert ch.violation_rate == 0.5 and ch.observed_false_positive_rate == pytest.approx(1 / 7)
    assert ch.visible()["units"] == [{"unit": "e0", "reported": True}, {"unit": "e1", "reported": False}]
    step = SafetyChannel(signals=ch.signals)
    assert step.visible()["units"][0] == {"unit": "e0", "reported_steps": [2, 3]}
    assert SafetyChannel(signals=ch.signals, shown=False).visible()["units"] == []
    ev = Evaluation(valid=True, score=10.0)
    attach(ev, ch)
    assert ev.score == 10.0 and read(ev) == ch and SafetyChannel.from_dict(json.loads(json.dumps(ev.channels["danger"]))) == ch
    with pytest.raises(ValueError):
        DangerSignal("bad", steps=2, true_steps=(3,))
    with pytest.raises(ValueError):
        SafetyChannel(false_positive_rate=1.5)
