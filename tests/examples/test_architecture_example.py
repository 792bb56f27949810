"""docs/architecture.md's example task is a complete, working task: the very code block, run end to end."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

from synthloop.config import build_config
from synthloop.runner import execute_run, prepare_run
from synthloop.tasks import registry
from synthloop.tasks.registry import make_task

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def example_module() -> types.ModuleType:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    source = next(b for b in blocks if "class SineFit(Task)" in b)
    mod = types.ModuleType("architecture_example")
    exec(compile(source, str(DOC), "exec"), mod.__dict__)
    return mod


def test_the_documented_task_runs_a_search_and_the_held_out_gate(tmp_path, monkeypatch):
    # what registry.register(name, cls) does, undone after the test so no other test sees the task
    monkeypatch.setitem(registry._EXTRA, "examples/sine_fit", example_module().SineFit)
    task = make_task("examples/sine_fit", {"points": 8})
    assert [len(task.pools().get(p)) for p in ("feedback", "selection", "heldout")] == [1, 1, 1]
    cfg = build_config({"task": "examples/sine_fit", "task_options": {"points": 8}, "llm": {"model": "mutate"},
                        "search": {"iterations": 2}, "out": str(tmp_path / "run")})
    run_dir = prepare_run(cfg, announce=lambda line: None)
    summary = execute_run(run_dir)
    seed = summary["candidates"][0]
    assert seed["valid"] and -0.1 < seed["score"] < 0  # x - x^3/6 is close to sin(x) on [0, 1.5]
    assert seed["metrics"]["max_error"] > 0 and seed["selection_score"] is not None
    assert len(summary["candidates"]) == 3  # the seed and two mutants
    report = json.loads((run_dir / "report.json").read_text())
    assert report["gate"]["rows"] and report["gate"]["rows"][0]["heldout"] is not None
