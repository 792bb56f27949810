"""Prompt construction. Evaluation results enter a prompt only through the FeedbackSpec renderer.

Only feedback-pool evaluations are ever rendered: selection and held-out
evaluations are chosen by the engine and never shown to the synthesizer.
"""

from __future__ import annotations

from dataclasses import dataclass

from synthloop.core.task import Task
from synthloop.core.types import Artifact, Evaluation
from synthloop.feedback.spec import FeedbackSpec, render_evaluation

FENCE_LANG = {"python": "python", "c": "c", "cuda": "cuda", "text": "text"}


@dataclass
class PromptItem:
    """What the prompt needs to know about one earlier candidate."""

    cand_id: int
    generation: int
    artifact: Artifact | None
    feedback: Evaluation | None
    note: str = ""


def system_prompt(task: Task, diffs: bool) -> str:
    lang = FENCE_LANG.get(task.language, task.language)
    fmt = (
        f"Answer with the complete artifact in a single fenced block (```{lang} ... ```)."
        + (
            " Alternatively, to change only parts of the current artifact, answer with one or more"
            " SEARCH/REPLACE blocks:\n<<<<<<< SEARCH\n(exact lines of the current artifact)\n=======\n"
            "(replacement lines)\n>>>>>>> REPLACE"
            if diffs
            else ""
        )
    )
    return f"{task.brief().strip()}\n\n## Answer format\n{fmt}\n"


def _block(a: Artifact) -> str:
    lang = FENCE_LANG.get(a.language, a.language)
    return f"```{lang}\n{a.content.rstrip()}\n```"


def _render(item: PromptItem, task: Task, spec: FeedbackSpec) -> str:
    if item.feedback is None:
        return item.note or "(no evaluation: the proposal was not usable)"
    return render_evaluation(item.feedback, spec, task.metrics, task.objective)


def proposal_messages(
    task: Task,
    spec: FeedbackSpec,
    diffs: bool,
    parent: PromptItem | None,
    history: list[PromptItem],
    instruction: str,
) -> list[dict[str, str]]:
    """Messages for one proposal: the parent with its feedback, then earlier iterations' feedback."""
    parts: list[str] = []
    if parent is not None and parent.artifact is not None:
        parts.append(f"## Current {task.language} artifact (candidate #{parent.cand_id}, generation {parent.generation})")
        parts.append(_block(parent.artifact))
        parts.append("### Its evaluation")
        parts.append(_render(parent, task, spec))
    shown = [h for h in history if parent is None or h.cand_id != parent.cand_id]
    if spec.history is not None:
        shown = shown[-spec.history:] if spec.history else []
    if shown:
        parts.append("## Earlier iterations (oldest first)")
        for h in shown:
            parts.append(f"### Generation {h.generation}, candidate #{h.cand_id}")
            parts.append(_render(h, task, spec))
    parts.append("## Your task")
    parts.append(instruction)
    return [
        {"role": "system", "content": system_prompt(task, diffs and parent is not None)},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def retry_message(error: str, code: str | None, language: str) -> str:
    msg = f"Your previous answer could not be used.\nProblem: {error}\n"
    if code:
        lang = FENCE_LANG.get(language, language)
        msg += f"The code that failed:\n```{lang}\n{code.rstrip()}\n```\n"
    msg += "Fix the problem and answer again with the complete artifact in one fenced block."
    return msg
