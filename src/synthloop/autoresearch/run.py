"""One autoresearch run end to end: harness → service → researcher → final gate → report.

Order matters for safety and correctness: the sandboxes' zygotes are forked
before any thread exists; the service binds first so program.md can name its
URL; the baseline is measured before the researcher starts; whatever the
researcher left unmeasured in the workspace is discarded before the gate, so
the gate and the report describe the incumbent commit and nothing else.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthloop.autoresearch.harness import Budget, Harness, KeepRule
from synthloop.autoresearch.measure import InnerSetup, Pick
from synthloop.autoresearch.researcher import BuiltinResearcher, run_external
from synthloop.autoresearch.service import EvalService
from synthloop.llm.factory import make_synthesizer
from synthloop.tasks.registry import make_task


@dataclass
class AutoresearchConfig:
    task: str
    objective: str | None = None  # None: the task's own objective
    task_options: dict[str, Any] = field(default_factory=dict)
    synthesizer_model: str = "mutate"
    synthesizer_base_url: str | None = None
    researcher_model: str | None = None
    researcher_base_url: str | None = None
    researcher_cmd: str | None = None  # external agent command template (instead of researcher_model)
    replicates: int = 3
    budget: Budget = field(default_factory=Budget)
    rule: KeepRule = field(default_factory=KeepRule)
    pick: Pick = "last"
    max_turns: int = 60
    workers: int | None = None
    out: Path | None = None
    backoff_base_s: float = 1.0
    extra_frozen: list[Path] = field(default_factory=list)
    start_files: dict[str, str] | None = None
    port: int = 0
    external_grace_s: float = 60.0  # an external agent still running this long after the budget is spent is stopped


@dataclass
class RunResult:
    run_dir: Path
    stop_reason: str
    gate: dict[str, Any]
    reports: list[Path]
    transcript: list[str]
    responses: list[str]


def run_autoresearch(cfg: AutoresearchConfig, announce: Any = print) -> RunResult:
    from synthloop.autoresearch.report import report

    if (cfg.researcher_model is None) == (cfg.researcher_cmd is None):
        raise ValueError("give exactly one researcher: --researcher-model or --researcher-cmd")
    task = make_task(cfg.task, cfg.task_options)
    run_dir = cfg.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-autoresearch-{cfg.task.replace('/', '-')}"
    if (run_dir / "autoresearch.sqlite").exists():
        raise ValueError(f"{str(run_dir)!r} already holds an autoresearch run")
    setup = InnerSetup(task=task, task_name=cfg.task, task_options=cfg.task_options,
                       objective=cfg.objective or task.objective, synth_model=cfg.synthesizer_model,
                       synth_base_url=cfg.synthesizer_base_url, pick=cfg.pick, backoff_base_s=cfg.backoff_base_s)
    harness = Harness(run_dir, setup, replicates=cfg.replicates, budget=cfg.budget, rule=cfg.rule,
                      extra_frozen=cfg.extra_frozen, workers=cfg.workers, start_files=cfg.start_files)
    service = EvalService(harness, port=cfg.port)
    transcript: list[str] = []
    try:
        ws = harness.open_workspace(service.url)
        announce(f"autoresearch: workspace {ws.root}, service {service.url}")
        service.serve()
        if cfg.researcher_cmd is not None:
            stop = run_external(cfg.researcher_cmd, ws, service.url, run_dir / "researcher.log", cfg.budget.wall_s,
                                should_stop=harness.spent, grace_s=cfg.external_grace_s)
        else:
            assert cfg.researcher_model is not None
            synth = make_synthesizer(cfg.researcher_model, base_url=cfg.researcher_base_url,
                                     backoff_base_s=cfg.backoff_base_s)
            agent = BuiltinResearcher(synth, cfg.researcher_model, ws, harness.ledger, service.url, harness.program,
                                      max_turns=cfg.max_turns)
            try:
                stop = agent.run()
            finally:
                transcript = agent.transcript
                with open(run_dir / "researcher_transcript.jsonl", "w") as f:
                    f.writelines(json.dumps(t) + "\n" for t in transcript)
        service.stop()  # no researcher-reachable scoring from here on
        ws.discard(harness.incumbent)  # unmeasured leftovers never reach the gate
        harness.ledger.set_meta("stop_reason", stop)
        announce(f"autoresearch: researcher stopped ({stop}); final gate on held-out")
        gate = harness.gate()
        announce(f"autoresearch: {gate['verdict']}")
    finally:
        service.stop()
        harness.close()
    paths = report(run_dir, run_dir)
    harness.ledger.close()
    return RunResult(run_dir, stop, gate, paths, transcript, list(service.responses))
