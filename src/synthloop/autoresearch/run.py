"""One autoresearch run end to end: harness → service → researcher → final gate → report.

Order matters for safety and correctness: the sandboxes' zygotes are forked
before any thread exists; the service binds before the researcher starts; the
baseline is measured before the researcher starts; whatever the researcher
left unmeasured in the workspace is discarded before the gate, so the gate and
the report describe the incumbent commit and nothing else.

Resuming (:func:`resume_autoresearch`, ``synthloop autoresearch resume RUN``):
the configuration is stored in the ledger when the run starts; a run killed
at any point continues from its ledger (rows, spend and wall time kept), with
the workspace restored to the incumbent and the experiment in flight recorded
as interrupted (:meth:`Harness.resume_workspace`); a run killed after the
researcher stopped goes straight to the (rest of the) final gate. A lock file
keeps two processes from driving one run directory.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from synthloop.autoresearch.harness import Budget, Harness, KeepRule
from synthloop.autoresearch.jail import JailPolicy, ResearcherJail, resolve
from synthloop.autoresearch.ledger import Ledger
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
    jail: JailPolicy = field(default_factory=JailPolicy)  # the external researcher's jail (see jail.py)

    def to_meta(self) -> dict[str, Any]:
        """JSON for the ledger (``meta.config``): everything a resume needs; no secret is part of it."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d.update(budget=dataclasses.asdict(self.budget), rule=dataclasses.asdict(self.rule),
                 jail=self.jail.to_dict(), extra_frozen=[str(p) for p in self.extra_frozen],
                 out=str(self.out) if self.out is not None else None)
        return d

    @classmethod
    def from_meta(cls, d: dict[str, Any]) -> AutoresearchConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw.update(budget=Budget(**d["budget"]), rule=KeepRule(**d["rule"]), jail=JailPolicy.from_dict(d["jail"]),
                  extra_frozen=[Path(p) for p in d.get("extra_frozen", [])],
                  out=Path(d["out"]) if d.get("out") else None)
        return cls(**kw)


@dataclass
class RunResult:
    run_dir: Path
    stop_reason: str
    gate: dict[str, Any]
    reports: list[Path]
    transcript: list[str]
    responses: list[str]


def load_config(run_dir: Path) -> AutoresearchConfig:
    """The configuration an autoresearch run was started with (stored in its ledger)."""
    path = Path(run_dir) / "autoresearch.sqlite"
    if not path.is_file():
        raise ValueError(f"{str(run_dir)!r} holds no autoresearch run (no autoresearch.sqlite); valid: a run"
                         " directory made by `synthloop autoresearch`")
    led = Ledger(path, readonly=True)
    try:
        meta = led.get_meta("config")
    finally:
        led.close()
    if meta is None:
        raise ValueError(f"{str(run_dir)!r} has no stored configuration (it was stopped before its baseline began,"
                         " or made by an older synthloop); start it again in a new directory")
    cfg = AutoresearchConfig.from_meta(meta)
    cfg.out = Path(run_dir)
    return cfg


def resume_autoresearch(run_dir: Path, announce: Any = print, **overrides: Any) -> RunResult:
    """Continue an interrupted run; ``overrides`` may change only the researcher side (not what is measured)."""
    allowed = {"researcher_model", "researcher_base_url", "researcher_cmd", "jail", "max_turns", "external_grace_s",
               "backoff_base_s", "workers", "port"}
    bad = sorted(set(overrides) - allowed)
    if bad:
        raise ValueError(f"cannot change {', '.join(bad)} when resuming; valid: {', '.join(sorted(allowed))}")
    cfg = load_config(run_dir)
    if overrides.get("researcher_model") is not None:
        cfg.researcher_cmd = None
    if overrides.get("researcher_cmd") is not None:
        cfg.researcher_model = cfg.researcher_base_url = None
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    return run_autoresearch(cfg, announce, resume=True)


def _lock(run_dir: Path) -> IO[str]:
    """An exclusive lock on the run directory for this process's lifetime (released by the kernel on death)."""
    f = open(run_dir / ".autoresearch.lock", "a+")  # noqa: SIM115 - held until the run ends
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise ValueError(f"{str(run_dir)!r} is in use by another autoresearch process; wait for it to end or stop it"
                         " first") from None
    f.truncate(0)
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def _finished(run_dir: Path) -> bool:
    led = Ledger(run_dir / "autoresearch.sqlite", readonly=True)
    try:
        return led.get_meta("gate") is not None
    finally:
        led.close()


def run_autoresearch(cfg: AutoresearchConfig, announce: Any = print, resume: bool = False) -> RunResult:
    """Run (``resume=True``: continue) an autoresearch run; returns its result once the report is written."""
    from synthloop.autoresearch.report import report

    if (cfg.researcher_model is None) == (cfg.researcher_cmd is None):
        raise ValueError("give exactly one researcher: --researcher-model or --researcher-cmd")
    jail_mode = resolve(cfg.jail) if cfg.researcher_cmd is not None else None  # fails fast: JailError
    task = make_task(cfg.task, cfg.task_options)
    run_dir = cfg.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-autoresearch-{cfg.task.replace('/', '-')}"
    held = (run_dir / "autoresearch.sqlite").exists()
    if resume and not held:
        raise ValueError(f"{str(run_dir)!r} holds no autoresearch run (no autoresearch.sqlite); valid: a run"
                         " directory made by `synthloop autoresearch`")
    if held and not resume:
        raise ValueError(f"{str(run_dir)!r} already holds an autoresearch run; continue it with"
                         f" `synthloop autoresearch resume {run_dir}`")
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.out is None:  # the default place: the runs beside this one hold other held-out results; hide them too
        cfg = dataclasses.replace(cfg, out=run_dir, jail=dataclasses.replace(
            cfg.jail, hide=(*cfg.jail.hide, str(run_dir.parent.resolve()))))
    lock = _lock(run_dir)
    try:
        if resume and _finished(run_dir):
            if (run_dir / "autoresearch_report.md").exists():
                raise ValueError(f"{str(run_dir)!r} is finished (its final gate ran); nothing to resume")
            paths = report(run_dir, run_dir)  # killed while writing the report: only that was left
            return RunResult(run_dir, "finished earlier", _meta(run_dir, "gate") or {}, paths, [], [])
        return _run(cfg, run_dir, task, jail_mode, announce, resume)
    finally:
        lock.close()


def _meta(run_dir: Path, key: str) -> Any:
    led = Ledger(run_dir / "autoresearch.sqlite", readonly=True)
    try:
        return led.get_meta(key)
    finally:
        led.close()


def _run(cfg: AutoresearchConfig, run_dir: Path, task: Any, jail_mode: str | None, announce: Any,
         resume: bool) -> RunResult:
    from synthloop.autoresearch.report import report

    setup = InnerSetup(task=task, task_name=cfg.task, task_options=cfg.task_options,
                       objective=cfg.objective or task.objective, synth_model=cfg.synthesizer_model,
                       synth_base_url=cfg.synthesizer_base_url, pick=cfg.pick, backoff_base_s=cfg.backoff_base_s)
    harness = Harness(run_dir, setup, replicates=cfg.replicates, budget=cfg.budget, rule=cfg.rule,
                      extra_frozen=cfg.extra_frozen, workers=cfg.workers, start_files=cfg.start_files, resume=resume)
    token = secrets.token_urlsafe(24)  # per session; never stored
    service = EvalService(harness, port=cfg.port, token=token)
    transcript: list[str] = []
    jail: ResearcherJail | None = None
    stop = ""
    try:
        if resume:
            announce(f"autoresearch: resuming {run_dir}")
            for note in harness.resume_workspace():
                announce(f"autoresearch: resume: {note}")
            stop = harness.ledger.get_meta("stop_reason") or ""  # set: the researcher had already stopped
        else:
            harness.ledger.set_meta("config", cfg.to_meta())
            harness.open_workspace()
        ws = harness.ws
        assert ws is not None
        if not stop and harness.spent():
            stop = f"budget spent: {harness.spent()}"
        if stop and resume:  # nothing left for a researcher: straight to (the rest of) the final gate
            session = {"t": time.time(), "kind": "resume", "researcher": None, "note": f"no researcher: {stop}"}
            harness.ledger.set_meta("sessions", [*harness.ledger.get_meta("sessions", []), session])
        if not stop:
            session: dict[str, Any] = {"t": time.time(), "kind": "resume" if resume else "start"}
            if cfg.researcher_cmd is not None:
                assert jail_mode is not None
                jail = ResearcherJail(cfg.jail, jail_mode, run_dir, ws.root)
                session.update(researcher="external", command=cfg.researcher_cmd, jail=jail.describe())
            else:
                session.update(researcher="builtin", model=cfg.researcher_model, jail=None)
            harness.ledger.set_meta("sessions", [*harness.ledger.get_meta("sessions", []), session])
            service.serve()
            announce(f"autoresearch: workspace {ws.root}, service {service.url}")
            if jail is not None:
                assert cfg.researcher_cmd is not None
                if not jail.jailed:
                    announce("autoresearch: WARNING: the external researcher runs unjailed (--researcher-jail none);"
                             " recorded in the run and its report")
                left = None if cfg.budget.wall_s is None else max(0.0, cfg.budget.wall_s - harness.wall_used())
                stop = run_external(cfg.researcher_cmd, ws, service.url, run_dir / "researcher.log", left,
                                    should_stop=harness.spent, grace_s=cfg.external_grace_s, jail=jail, token=token,
                                    on_listen=service.serve_socket)
            else:
                assert cfg.researcher_model is not None
                synth = make_synthesizer(cfg.researcher_model, base_url=cfg.researcher_base_url,
                                         backoff_base_s=cfg.backoff_base_s)
                agent = BuiltinResearcher(synth, cfg.researcher_model, ws, harness.ledger, service.url,
                                          harness.program, max_turns=cfg.max_turns, token=token)
                try:
                    stop = agent.run()
                finally:
                    transcript = agent.transcript
                    with open(run_dir / "researcher_transcript.jsonl", "a") as f:
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
        if jail is not None:
            jail.close()
    paths = report(run_dir, run_dir)
    harness.ledger.close()
    return RunResult(run_dir, stop, gate, paths, transcript, list(service.responses))
