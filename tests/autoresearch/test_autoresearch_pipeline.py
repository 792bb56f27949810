"""The editable surface: strict config, template, workspace rules, keep rule and tool-call parsing (no LLM)."""

from __future__ import annotations

import os

import pytest

from synthloop.autoresearch.harness import KeepRule, keep_decision
from synthloop.autoresearch.measure import Stat
from synthloop.autoresearch.pipeline import (
    CONFIG_FILE,
    DEFAULT_FILES,
    FEEDBACK_FILE,
    HELPERS_FILE,
    PROMPT_FILE,
    Pipeline,
    PipelineError,
    parse_config,
)
from synthloop.autoresearch.researcher import parse_tool_call
from synthloop.autoresearch.workspace import Refused, Workspace
from synthloop.tasks.registry import make_task

PROGRAM = "# rules\n"


@pytest.fixture
def ws(tmp_path):
    return Workspace.create(tmp_path / "ws", tmp_path / "git", PROGRAM)


@pytest.mark.parametrize("text, needle", [
    ("iterations: 3\nthinking_budget: 10000\n", "thinking_budget: unknown field"),
    ("iterations: 99\n", "iterations: Input should be less than or equal to 8"),
    ("show:\n  colour: red\n", "show.colour: unknown field"),
    ("retries: -1\n", "retries"),
    ("- a list\n", "must be a mapping"),
])
def test_config_rejects_unknown_dead_and_out_of_bounds_fields(text, needle):
    with pytest.raises(PipelineError, match="config") as e:
        parse_config(text)
    assert needle in str(e.value)


def test_config_fields_that_the_task_would_ignore_are_errors():
    task = make_task("examples/constant")
    files = dict(DEFAULT_FILES)
    files[CONFIG_FILE] = "feedback_cases: 2\n"  # constant has one feedback case
    with pytest.raises(PipelineError, match="only 1 feedback case"):
        Pipeline.from_files(files, task)
    files[CONFIG_FILE] = "show:\n  metrics: [value, speed]\n"
    with pytest.raises(PipelineError, match="unknown metric"):
        Pipeline.from_files(files, task)


def test_template_renders_the_live_brief_and_rejects_unknown_placeholders():
    task = make_task("examples/circle_packing", {"n": 7})
    files = dict(DEFAULT_FILES)
    files[PROMPT_FILE] = "$brief\nObjective: $objective\nHelpers:\n$helpers\nCost: $$5"
    files[HELPERS_FILE] = "def helper():\n    return 1\n"
    p = Pipeline.from_files(files, task)
    text = p.system_prompt(task, "sum_radii")
    assert "Pack exactly 7 circles" in text and "Objective: sum_radii" in text
    assert "def helper()" in text and "Cost: $5" in text
    files[PROMPT_FILE] = "$brief $secret_heldout"
    with pytest.raises(PipelineError, match=r"unknown placeholder \$secret_heldout"):
        Pipeline.from_files(files, task)


@pytest.mark.parametrize("path, reason", [
    ("../outside.py", "leaves the workspace"),
    ("/etc/passwd", "absolute"),
    ("pipeline/../../x", "leaves the workspace"),
    ("program.md", "frozen"),
    ("notes.md", "not an editable pipeline file"),
    ("pipeline/evaluator.py", "not an editable pipeline file"),
])
def test_workspace_refuses_writes_outside_the_pipeline(ws, path, reason):
    with pytest.raises(Refused, match=reason):
        ws.write(path, "x")


def test_workspace_refuses_reads_through_symlinks_that_leave_it(ws, tmp_path):
    (tmp_path / "secret.txt").write_text("sealed")
    os.symlink(tmp_path / "secret.txt", ws.root / "pipeline" / "link.md")
    with pytest.raises(Refused, match="leaves the workspace"):
        ws.read("pipeline/link.md")
    with pytest.raises(Refused, match="version-control"):
        ws.read(".git/config")


def test_snapshot_refuses_stray_files_symlinks_and_a_changed_program(ws):
    head = ws.head()
    (ws.root / "notes.txt").write_text("scratch")
    with pytest.raises(Refused, match="files outside the pipeline"):
        ws.snapshot(1, "m", head, PROGRAM)
    assert (ws.root / "notes.txt").exists()  # a refused snapshot leaves the edits as they were
    (ws.root / "notes.txt").unlink()
    (ws.root / "program.md").write_text("new rules")
    with pytest.raises(Refused, match="program.md is frozen"):
        ws.snapshot(1, "m", head, PROGRAM)
    (ws.root / "program.md").write_text(PROGRAM)
    (ws.root / HELPERS_FILE).unlink()
    os.symlink("/etc/hostname", ws.root / HELPERS_FILE)
    with pytest.raises(Refused, match="not a regular file"):
        ws.snapshot(1, "m", head, PROGRAM)


def test_discard_restores_the_incumbent_completely(ws):
    head = ws.head()
    ws.write(FEEDBACK_FILE, "def build_feedback(ctx):\n    return 'x'\n")
    snap = ws.snapshot(1, "edit", head, PROGRAM)
    (ws.root / "pipeline" / "__pycache__").mkdir()
    (ws.root / "pipeline" / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    (ws.root / "scratch").mkdir()
    ws.discard(head)
    assert ws.files_at(head)[FEEDBACK_FILE] == (ws.root / FEEDBACK_FILE).read_text()
    assert sorted(ws.list_files()) == sorted([*DEFAULT_FILES, "program.md"])
    assert not (ws.root / "scratch").exists() and not (ws.root / "pipeline" / "__pycache__").exists()
    assert ws.head() == head
    assert ws.git("rev-parse", "refs/experiments/1").strip() == snap.commit  # still auditable


def test_git_hooks_cannot_be_planted_from_the_workspace(ws):
    assert not (ws.root / ".git").exists()  # the repository lives outside the researcher's tree
    with pytest.raises(Refused):
        ws.write(".git/hooks/pre-commit", "#!/bin/sh\ntouch /tmp/pwned\n")


def test_keep_rule_needs_a_paired_improvement_beyond_the_noise():
    rule = KeepRule()
    d, why, delta, margin = keep_decision([0.5, 0.6, 0.55], [0.3, 0.3, 0.3], 1.0, 0.0, rule)
    assert d == "keep" and delta.mean == pytest.approx(0.25)
    # same mean gain, but the baseline's own spread is large: the noise floor blocks it
    d, why, _, margin = keep_decision([0.5, 0.6, 0.55], [0.3, 0.3, 0.3], 1.0, 0.5, rule)
    assert d == "discard" and margin > 0.25
    # any replicate without a valid policy blocks a keep
    d, why, _, _ = keep_decision([0.9, None, 0.9], [0.3, 0.3, 0.3], 1.0, 0.0, rule)
    assert d == "discard" and "no valid policy" in why
    # for a 'min' objective the sign flips
    d, *_ = keep_decision([0.1, 0.1], [0.3, 0.31], -1.0, 0.0, rule)
    assert d == "keep"
    # min_delta is a floor on the margin
    d, *_ = keep_decision([0.31, 0.31], [0.3, 0.3], 1.0, 0.0, KeepRule(min_delta=0.05))
    assert d == "discard"


def test_stat_interval():
    s = Stat.of([1.0, 2.0, 3.0])
    assert s.mean == 2.0 and s.lo == pytest.approx(2 - 4.302653 / 3 ** 0.5, rel=1e-5)
    assert Stat.of([1.0]).to_dict()["ci95"] == ["-inf", "inf"]


def test_tool_calls_parse_from_plain_chat_text():
    assert parse_tool_call('Thinking {not json} then {"tool": "ledger", "args": {}}') == ("ledger", {})
    assert parse_tool_call('```json\n{"tool": "read_file", "args": {"path": "a"}}\n```') == (
        "read_file", {"path": "a"})
    with pytest.raises(ValueError, match="no tool call"):
        parse_tool_call("I refuse")
