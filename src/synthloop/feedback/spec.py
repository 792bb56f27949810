"""FeedbackSpec: which parts of an Evaluation the synthesizer sees, and how.

Feedback is the main research knob of LLM-driven synthesis, so it is one
explicit, recorded, ablatable object instead of strings scattered through
prompt code. Every prompt that carries evaluation results is rendered by
:func:`render_evaluation`, which has no code path that reads
``Evaluation.private``: private values (held-out scores, hidden rewards,
integrity verdicts) cannot leak into a prompt by construction.

Modes:

* ``sparse``: the objective only (one number);
* ``dense``: the objective plus named metrics (optionally a chosen subset),
  with their definitions and directions;
* ``bit``: only whether a safety channel fired (for 1-bit danger signals);
* ``none``: no evaluation results at all (a control for ablations).

``diagnostics`` adds compiler errors, tracebacks and per-case correctness
lines; ``per_case`` adds the per-case scores of the feedback pool.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from synthloop.core.types import Evaluation, MetricSpec

FeedbackMode = Literal["sparse", "dense", "bit", "none"]


class FeedbackSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: FeedbackMode = "dense"
    metrics: list[str] | None = Field(default=None, description="dense mode: metrics to show (None = all)")
    describe_metrics: bool = Field(default=True, description="include each metric's definition and direction")
    diagnostics: bool = Field(default=True, description="show diagnostics (errors, tracebacks, checks)")
    max_diagnostic_lines: int = Field(default=30, ge=0)
    per_case: bool = Field(default=False, description="show per-case scores of the feedback pool")
    channels: list[str] = Field(default_factory=list, description="safety channels to show (bit mode)")
    history: int | None = Field(default=None, ge=0, description="earlier iterations shown (None = all)")
    max_chars: int = Field(default=6000, ge=200, description="cap on one rendered evaluation")


def _fmt(x: float) -> str:
    if x == 0 or 1e-3 <= abs(x) < 1e6:
        return f"{x:.6g}"
    return f"{x:.4e}"


def _visible_channel(raw: object) -> object:
    """Only what a safety channel lets the synthesizer see: reported bits, never the true violations."""
    if isinstance(raw, dict) and raw.get("kind") == "safety":
        from synthloop.oversight.channels import SafetyChannel

        return SafetyChannel.from_dict(raw).visible()
    return raw


def render_evaluation(
    ev: Evaluation,
    spec: FeedbackSpec,
    metrics: list[MetricSpec],
    objective: str = "score",
) -> str:
    """Render one evaluation for a prompt, as the spec allows. Never reads ``ev.private``."""
    if spec.mode == "none":
        return "(evaluation results are not shown in this configuration)"
    lines: list[str] = []
    if not ev.valid:
        lines.append(f"INVALID ({ev.error_kind or 'invalid'}): the artifact produced no score.")
    elif spec.mode in ("sparse", "dense"):
        lines.append(f"{objective}: {_fmt(float(ev.score))}")  # type: ignore[arg-type]
    if spec.mode == "dense" and ev.valid:
        shown = [m for m in metrics if m.name in ev.metrics and m.name != objective]
        if spec.metrics is not None:
            order = {n: i for i, n in enumerate(spec.metrics)}
            shown = sorted((m for m in shown if m.name in order), key=lambda m: order[m.name])
        for m in shown:
            line = f"{m.name}: {_fmt(ev.metrics[m.name])}"
            if spec.describe_metrics:
                extra = f" ({'higher' if m.direction == 'max' else 'lower'} is better"
                extra += f"; {m.description})" if m.description else ")"
                line += extra
            lines.append(line)
    if spec.mode == "bit" or spec.channels:
        for name in spec.channels or sorted(ev.channels):
            if name in ev.channels:
                lines.append(f"{name}: {_visible_channel(ev.channels[name])}")
    if spec.per_case and ev.cases and spec.mode in ("sparse", "dense"):
        cells = ", ".join(
            f"{c.case_id}={_fmt(c.score) if c.ok and c.score is not None else 'fail'}" for c in ev.cases
        )
        lines.append(f"per case: {cells}")
    if spec.diagnostics and ev.diagnostics and spec.max_diagnostic_lines:
        diag = ev.diagnostics[: spec.max_diagnostic_lines]
        lines.append("diagnostics:")
        lines.extend(f"  {d}" for d in diag)
        if len(ev.diagnostics) > len(diag):
            lines.append(f"  ... {len(ev.diagnostics) - len(diag)} more lines omitted")
    text = "\n".join(lines)
    if len(text) > spec.max_chars:
        text = text[: spec.max_chars - 40] + "\n... (feedback truncated)"
    return text
