"""The editable pipeline: the four files a researcher may change, and how the inner loop uses them.

A pipeline is read from one committed snapshot of the workspace (never from
the live directory, which an external agent may be editing mid-measurement):

* ``pipeline/system_prompt.md``: a ``string.Template`` rendered with the task's
  live brief (``$brief``), the answer format (``$answer_format``), the helper
  library (``$helpers``), the objective (``$objective``) and ``$language``. An
  unknown placeholder is an error, not an empty string.
* ``pipeline/feedback.py``: ``build_feedback(ctx: dict) -> str``, the iteration
  prompt. It is untrusted code, so it only ever runs inside the sandbox (as
  :class:`FeedbackBuilderTask` through :func:`synthloop.execution.make_executor`);
  it receives feedback-pool results only, filtered by ``show`` and stripped of
  every private value before they leave the trusted process.
* ``pipeline/helpers.py``: source prepended to every synthesized Python
  artifact before it runs (in the sandbox), documented to the model through
  ``$helpers``.
* ``pipeline/config.yaml``: the iteration config, validated by
  :class:`PipelineConfig` with fixed bounds; unknown fields are errors and every
  field is read somewhere, so no edit can be credited to a dead knob (§10.4).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthloop.core.task import Task
from synthloop.core.types import Artifact, Case, CasePools, CaseResult, Evaluation
from synthloop.execution.base import CaseOutcome, Executor, Limits
from synthloop.feedback.prompt import FENCE_LANG, PromptItem
from synthloop.feedback.spec import FeedbackSpec
from synthloop.tasks.examples._exec import entry_point

PROMPT_FILE = "pipeline/system_prompt.md"
FEEDBACK_FILE = "pipeline/feedback.py"
HELPERS_FILE = "pipeline/helpers.py"
CONFIG_FILE = "pipeline/config.yaml"
EDITABLE = (PROMPT_FILE, FEEDBACK_FILE, HELPERS_FILE, CONFIG_FILE)
MAX_PROMPT_CHARS = 60_000
BUILDER_LIMITS = Limits(wall_s=10.0, memory_mb=512, output_chars=4000, result_mb=1)


class PipelineError(ValueError):
    """The pipeline cannot be used as written (bad config, template or builder); shown to the researcher."""


class ShowConfig(BaseModel):
    """Which parts of a feedback-pool Evaluation reach the feedback builder (and so, possibly, the model)."""

    model_config = ConfigDict(extra="forbid")

    score: bool = True
    metrics: Literal["all"] | list[str] = "all"
    diagnostics: bool = True
    max_diagnostic_lines: int = Field(default=30, ge=0, le=200)
    per_case: bool = False
    channels: list[str] = Field(default_factory=list, max_length=16)


class PipelineConfig(BaseModel):
    """The iteration logic: every field is live, bounded, and unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")

    iterations: int = Field(default=3, ge=0, le=8, description="K: refinement rounds after the first answer")
    retries: int = Field(default=2, ge=0, le=5, description="re-asks after an unusable answer")
    parent: Literal["latest", "best"] = Field(default="latest", description="which earlier candidate is refined")
    feedback_cases: int = Field(default=1, ge=1, le=64, description="feedback cases shown (first n of the pool)")
    history: int | None = Field(default=None, ge=0, le=32, description="earlier iterations in context (None: all)")
    show: ShowConfig = Field(default_factory=ShowConfig)

    def check_against(self, task: Task) -> None:
        """Task-dependent bounds: a field that the task would silently ignore is an error."""
        n_fb = len(task.pools().feedback)
        if self.feedback_cases > n_fb:
            raise PipelineError(f"config: feedback_cases={self.feedback_cases} but the task has only {n_fb}"
                                " feedback case(s)")
        if isinstance(self.show.metrics, list):
            names = {m.name for m in task.objectives()}
            unknown = [m for m in self.show.metrics if m not in names]
            if unknown:
                raise PipelineError(f"config: unknown metric(s) {unknown} in show.metrics; valid: {sorted(names)}")

    def feedback_spec(self) -> FeedbackSpec:
        """The engine-side spec: only ``history`` is read by the engine (the builder gets the rest via ``show``)."""
        return FeedbackSpec(history=self.history)


DEFAULT_PROMPT = """$brief

## Answer format
$answer_format
"""

DEFAULT_CONFIG = """# Iteration config of the inner loop (validated; unknown fields are errors).
iterations: 3        # K: refinement rounds after the first answer (0..8)
retries: 2           # re-asks after an unusable answer (0..5)
parent: latest       # latest | best: which earlier candidate is refined
feedback_cases: 1    # how many feedback cases the inner loop evaluates and shows (1..pool size)
history: null        # earlier iterations kept in context (null: all)
show:                # what the feedback builder receives from each evaluation
  score: true
  metrics: all       # all, or a list of metric names
  diagnostics: true
  max_diagnostic_lines: 30
  per_case: false
  channels: []
"""

DEFAULT_HELPERS = '''"""Helper library: prepended to every synthesized artifact before it runs (Python tasks only).

Anything defined here is callable from the artifact. Describe it in the system prompt
($helpers inserts this file's text there).
"""
'''

DEFAULT_FEEDBACK = '''"""Feedback builder: turns the evaluation history into the iteration prompt.

build_feedback(ctx) receives a JSON-ready dict and returns the user message:
  ctx["iteration"], ctx["iterations"]       this round and K
  ctx["objective"], ctx["metrics"]          objective name; [{name, direction, description}]
  ctx["language"], ctx["instruction"]       artifact language; the round's instruction
  ctx["parent"]                             None or {id, generation, code, evaluation, note}
  ctx["history"]                            [{id, generation, evaluation, note}], oldest first
An evaluation is None (unusable answer) or {valid, error_kind, score?, metrics?, diagnostics?,
per_case?, channels?} with only the parts the config's `show` allows. Runs in a sandbox:
no files, no network.
"""


def _fmt(x):
    return f"{x:.6g}" if isinstance(x, (int, float)) else str(x)


def _render(ev, metrics):
    if ev is None:
        return "(no evaluation: the answer was not usable)"
    lines = []
    if not ev["valid"]:
        lines.append(f"INVALID ({ev.get('error_kind') or 'invalid'}): the artifact produced no score.")
    elif "score" in ev:
        lines.append(f"score: {_fmt(ev['score'])}")
    desc = {m["name"]: m for m in metrics}
    for name, value in (ev.get("metrics") or {}).items():
        m = desc.get(name, {})
        better = "higher" if m.get("direction", "max") == "max" else "lower"
        lines.append(f"{name}: {_fmt(value)} ({better} is better; {m.get('description', '')})")
    if ev.get("per_case"):
        lines.append("per case: " + ", ".join(f"{k}={_fmt(v)}" for k, v in ev["per_case"].items()))
    for name, value in (ev.get("channels") or {}).items():
        lines.append(f"{name}: {value}")
    if ev.get("diagnostics"):
        lines.append("diagnostics:")
        lines.extend("  " + d for d in ev["diagnostics"])
    return "\\n".join(lines)


def build_feedback(ctx):
    parts = []
    parent = ctx["parent"]
    if parent is not None and parent.get("code") is not None:
        parts.append(f"## Current {ctx['language']} artifact (candidate #{parent['id']},"
                     f" generation {parent['generation']})")
        parts.append(f"```{ctx['language']}\\n{parent['code'].rstrip()}\\n```")
        parts.append("### Its evaluation")
        parts.append(_render(parent["evaluation"], ctx["metrics"]) if parent["evaluation"] else parent["note"])
    if ctx["history"]:
        parts.append("## Earlier iterations (oldest first)")
        for h in ctx["history"]:
            parts.append(f"### Generation {h['generation']}, candidate #{h['id']}")
            parts.append(_render(h["evaluation"], ctx["metrics"]) if h["evaluation"] else h["note"])
    parts.append("## Your task")
    parts.append(ctx["instruction"])
    return "\\n\\n".join(parts)
'''

DEFAULT_FILES: dict[str, str] = {
    PROMPT_FILE: DEFAULT_PROMPT, FEEDBACK_FILE: DEFAULT_FEEDBACK, HELPERS_FILE: DEFAULT_HELPERS,
    CONFIG_FILE: DEFAULT_CONFIG,
}


def parse_config(text: str) -> PipelineConfig:
    """Validate config.yaml strictly; one line per problem, naming the field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PipelineError(f"config: not valid YAML: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PipelineError("config: must be a mapping")
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "config"
            msgs.append(f"{loc}: {'unknown field' if err['type'] == 'extra_forbidden' else err['msg']}")
        raise PipelineError("config: " + "; ".join(msgs)) from None


def _helpers_used(text: str) -> bool:
    """True when the helper file defines anything (comments and a docstring alone do not count)."""
    import ast

    try:
        body = ast.parse(text).body
    except SyntaxError:
        return True  # let the artifact run fail loudly
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


@dataclass(frozen=True)
class Pipeline:
    """One snapshot of the four pipeline files, validated against the inner task."""

    prompt_template: str
    feedback_code: str
    helpers: str
    config: PipelineConfig
    commit: str = ""

    @classmethod
    def from_files(cls, files: dict[str, str], task: Task, commit: str = "") -> Pipeline:
        missing = [f for f in EDITABLE if f not in files]
        if missing:
            raise PipelineError(f"missing pipeline file(s): {missing}")
        cfg = parse_config(files[CONFIG_FILE])
        cfg.check_against(task)
        p = cls(files[PROMPT_FILE], files[FEEDBACK_FILE], files[HELPERS_FILE], cfg, commit)
        if _helpers_used(p.helpers) and task.language != "python":
            raise PipelineError(f"{HELPERS_FILE}: helpers only apply to Python tasks; this task writes "
                                f"{task.language} (the file would be dead)")
        p.system_prompt(task, "score")  # template errors surface before any budget is spent
        return p

    def system_prompt(self, task: Task, objective: str) -> str:
        lang = FENCE_LANG.get(task.language, task.language)
        values = {
            "brief": task.brief().strip(), "helpers": self.helpers.strip(), "objective": objective,
            "language": task.language,
            "answer_format": f"Answer with the complete artifact in a single fenced block (```{lang} ... ```).",
        }
        try:
            text = string.Template(self.prompt_template).substitute(values)
        except KeyError as e:
            raise PipelineError(f"{PROMPT_FILE}: unknown placeholder ${e.args[0]}; valid: "
                                f"{', '.join('$' + k for k in values)} ($$ for a literal $)") from None
        except ValueError as e:
            raise PipelineError(f"{PROMPT_FILE}: {e} ($$ for a literal $)") from None
        if len(text) > MAX_PROMPT_CHARS:
            raise PipelineError(f"{PROMPT_FILE}: rendered prompt has {len(text)} characters (max {MAX_PROMPT_CHARS})")
        return text


# ------------------------------------------------------------------ the sandboxed feedback builder
class FeedbackBuilderTask(Task):
    """Runs researcher-written ``build_feedback`` inside the sandbox; the trusted side only checks the string."""

    name = "autoresearch/feedback_builder"
    description = "internal: executes a pipeline's feedback builder in the sandbox"

    @property
    def limits(self) -> Limits:
        return BUILDER_LIMITS

    def brief(self) -> str:
        return "internal task"

    def pools(self) -> CasePools:
        return CasePools()

    def run(self, artifact: Artifact, case: Case) -> Any:
        return entry_point(artifact, "build_feedback")(json.loads(case.params["context"]))

    def judge(self, artifact: Artifact, case: Case, output: Any) -> CaseResult:
        if not isinstance(output, str) or not output.strip():
            return CaseResult(case.id, ok=False, diagnostics=["build_feedback must return a non-empty str"],
                              error_kind="invalid")
        if len(output) > MAX_PROMPT_CHARS:
            return CaseResult(case.id, ok=False, error_kind="invalid",
                              diagnostics=[f"build_feedback returned {len(output)} chars (max {MAX_PROMPT_CHARS})"])
        return CaseResult(case.id, ok=True, score=0.0, diagnostics=[output])


def _eval_view(ev: Evaluation | None, show: ShowConfig) -> dict[str, Any] | None:
    """A feedback-pool evaluation as the builder may see it: never ``private``, never another pool."""
    if ev is None:
        return None
    if ev.pool != "feedback":  # defence in depth: the engine only hands feedback evaluations to prompts
        raise PipelineError(f"refusing to show a {ev.pool!r} evaluation to the feedback builder")
    d: dict[str, Any] = {"valid": ev.valid, "error_kind": ev.error_kind}
    if ev.valid and show.score:
        d["score"] = ev.score
    if ev.valid and show.metrics:
        wanted = ev.metrics if show.metrics == "all" else {k: ev.metrics[k] for k in show.metrics if k in ev.metrics}
        d["metrics"] = dict(wanted)
    if show.diagnostics:
        d["diagnostics"] = list(ev.diagnostics[: show.max_diagnostic_lines])
    if show.per_case:
        d["per_case"] = {c.case_id: (c.score if c.ok else "fail") for c in ev.cases}
    if show.channels:
        d["channels"] = {k: ev.channels[k] for k in show.channels if k in ev.channels}
    return d


class PipelineMessages:
    """The engine hook (:attr:`Engine.build_messages`): template system prompt + sandboxed builder output."""

    def __init__(self, pipeline: Pipeline, task: Task, objective: str, builder: Executor) -> None:
        self.pipeline = pipeline
        self.task = task
        self.objective = objective
        self.builder = builder
        self.system = pipeline.system_prompt(task, objective)

    def context(self, parent: PromptItem | None, history: list[PromptItem], instruction: str) -> dict[str, Any]:
        cfg = self.pipeline.config
        shown = [h for h in history if parent is None or h.cand_id != parent.cand_id]
        return {
            "iteration": (parent.generation + 1) if parent else 0, "iterations": cfg.iterations,
            "objective": self.objective, "language": self.task.language, "instruction": instruction,
            "metrics": [{"name": m.name, "direction": m.direction, "description": m.description}
                        for m in self.task.metrics],
            "parent": None if parent is None else {
                "id": parent.cand_id, "generation": parent.generation, "note": parent.note,
                "code": parent.artifact.content if parent.artifact else None,
                "evaluation": _eval_view(parent.feedback, cfg.show)},
            "history": [{"id": h.cand_id, "generation": h.generation, "note": h.note,
                         "evaluation": _eval_view(h.feedback, cfg.show)} for h in shown],
        }

    async def __call__(self, task: Task, spec: FeedbackSpec, diffs: bool, parent: PromptItem | None,
                       history: list[PromptItem], instruction: str) -> list[dict[str, str]]:
        ctx = json.dumps(self.context(parent, history, instruction))
        case = Case("build", "feedback", {"context": ctx})
        art = Artifact(self.pipeline.feedback_code)
        (out,) = await self.builder.run(art, [case], BUILDER_LIMITS)
        if not out.ok:
            raise PipelineError(f"{FEEDBACK_FILE} failed in the sandbox ({out.error_kind}): {out.error.strip()[-800:]}")
        res = FeedbackBuilderTask().judge(art, case, out.output)
        if not res.ok:
            raise PipelineError(f"{FEEDBACK_FILE}: {res.diagnostics[0]}")
        return [{"role": "system", "content": self.system}, {"role": "user", "content": out.output}]


class HelperExecutor(Executor):
    """Prepends the helper library to each artifact, so helpers run only where the artifact runs: the sandbox."""

    name = "helpers"

    def __init__(self, inner: Executor, helpers: str) -> None:
        self.inner = inner
        self.helpers = helpers

    def start(self) -> None:  # the wrapped executor is owned (started and closed) by the harness
        pass

    def close(self) -> None:
        pass

    async def run(self, artifact: Artifact, cases: list[Case], limits: Limits) -> list[CaseOutcome]:
        if self.helpers.strip() and artifact.language == "python":
            artifact = Artifact(self.helpers.rstrip() + "\n\n\n" + artifact.content, artifact.language,
                                dict(artifact.meta))
        return await self.inner.run(artifact, cases, limits)
