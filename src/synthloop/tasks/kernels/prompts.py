"""Prompts of the kernel search: system prompt, iteration prompt, history, stagnation hint, error trimming.

Structure follows the original (1+1) loop (spec §2.3) with the §7 fixes:

* the **launch configuration** the host uses is stated explicitly (the original hid the threadgroup shape
  and lost most wave3d candidates to tiling/shape mismatches, §7.6);
* compile errors are **trimmed** to the error lines and their source excerpts, so a 200-line cascade does
  not crowd out the kernel;
* the **stagnation hint** only proposes moves the backend contract allows (the original suggested temporal
  fusion and persistent threadgroups, impossible under a host-fixed one-call-per-step schedule);
* the promotion rule is stated, so the model knows a 1% "win" will not be accepted.

Everything rendered here comes from in-distribution sizes and feedback-pool evaluations only: held-out
configurations never reach this module (the gate is scored after the last LLM call), and evaluation
results go through :func:`synthloop.feedback.spec.render_evaluation`, which never reads ``private``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from synthloop.core.types import Artifact, Evaluation
from synthloop.feedback.spec import FeedbackSpec, render_evaluation
from synthloop.tasks.kernels.spec import KernelTask, Size

HISTORY_ROWS = 8
STAGNATION_WINDOW = 3
STAGNATION_BAND = 0.85
MAX_ERRORS = 8
MAX_ERROR_LINES = 40

_ERROR = re.compile(r"(^|[:\s(])(fatal )?error\b[:\s]", re.IGNORECASE)
_LOCATION = re.compile(r"^\S+?(:\d+(:\d+)?:|\(\d+\):)")

STAGNATION_HINTS: dict[str, list[str]] = {
    "cpu": [
        "vectorise the inner loop explicitly (restrict pointers, `#pragma omp simd`, a branch-free interior "
        "with the boundary peeled off)",
        "cache blocking / loop tiling inside one call so each tile's working set stays in L1/L2",
        "a different OpenMP decomposition (collapse, static chunks sized to cache lines, fewer parallel "
        "regions per call)",
        "a different data access order (structure-of-arrays traversal, fused passes over the same data, "
        "fewer loads per output via register reuse across neighbouring outputs)",
        "cheaper arithmetic: hoist invariants, replace divisions and transcendental calls where exact "
        "enough, strength-reduce index computations",
    ],
    "cuda": [
        "shared-memory tiling that matches the host's block shape exactly (the host fixes the block; read it "
        "from the launch configuration above)",
        "vectorised loads (float2/float4) with a scalar tail for sizes that are not multiples of 4",
        "warp-level primitives (__shfl_*_sync) for reductions and exchanges instead of shared memory",
        "more work per thread inside the fixed grid (each thread still owns its outputs; idle threads "
        "return early) and register reuse across neighbouring outputs",
        "read-only caching (__ldg / const __restrict__) and cheaper arithmetic (fused multiply-add, fast "
        "intrinsics within the tolerance)",
    ],
}


def trim_compile_error(log: str, max_errors: int = MAX_ERRORS, max_lines: int = MAX_ERROR_LINES) -> str:
    """The relevant lines of a compiler log: each error with its source excerpt, at most ``max_errors``.

    gcc/clang print ``file:line:col: error: ...`` then an excerpt (``  14 | code`` and a caret line); NVRTC
    prints ``file(line): error: ...`` then the line and a caret. Warnings and notes are dropped when there is
    an error; a log without a recognisable error is returned cut to ``max_lines``.
    """
    text = log.replace("COMPILE FAILED:\n", "").strip()
    lines = text.splitlines()
    keep: list[str] = []
    errors = 0
    i = 0
    while i < len(lines) and errors < max_errors:
        line = lines[i]
        if "In function" in line and not keep[-1:] == [line]:
            keep.append(line)
        if _ERROR.search(line) and "warning" not in line.split("error")[0].lower():
            errors += 1
            keep.append(line)
            j = i + 1  # the excerpt: following lines that are not a new diagnostic
            while j < len(lines) and j <= i + 3 and not _LOCATION.match(lines[j]) and "In function" not in lines[j]:
                keep.append(lines[j])
                j += 1
            i = j
            continue
        i += 1
    if not errors:
        keep = lines
    more = sum(1 for ln in lines[i:] if _ERROR.search(ln))
    if len(keep) > max_lines:
        keep = keep[:max_lines] + ["..."]
    if more:
        keep.append(f"... {more} more error line(s) omitted")
    return "\n".join(keep)


def _fence(language: str) -> str:
    return "c" if language == "c" else "cuda"


def _args(launch_args: tuple[Any, ...]) -> str:
    return ", ".join(str(a) if isinstance(a, str) else f"{a:g}" if isinstance(a, float) else str(a)
                     for a in launch_args)


def launch_configuration(spec: KernelTask, sizes: list[Size], backend: str, threads: int | None) -> str:
    """How the host drives the entry points, per in-distribution size (never a held-out one)."""
    lines: list[str] = []
    if backend == "cpu":
        from synthloop.tasks.kernels.cpu_backend import default_threads

        n = threads or default_threads()
        lines.append(f"- The host calls each entry point from one thread; your code parallelises itself with "
                     f"OpenMP. OMP_NUM_THREADS={n}, pinned (OMP_PROC_BIND=close, OMP_PLACES=cores). "
                     "Each call must finish its whole grid before returning; the host times whole repetitions.")
    else:
        lines.append("- One CUDA stream; every repetition is captured once as a CUDA graph and replayed. The "
                     "grid is padded to whole blocks, so guard against the logical extents.")
    for p in sizes:
        sched = spec.schedule(p, backend)
        runs: list[tuple[str, int]] = []
        for launch in sched:
            if runs and runs[-1][0] == launch.entry:
                runs[-1] = (launch.entry, runs[-1][1] + 1)
            else:
                runs.append((launch.entry, 1))
        seq = " -> ".join(f"{e} x{k}" if k > 1 else e for e, k in runs[:12])
        if len(runs) > 12:
            seq += f" -> ... ({len(runs)} groups)"
        lines.append(f"- {p.label}: {len(sched)} call(s) per repetition: {seq}")
        for launch in sched[:3]:
            geo = f" grid={launch.grid} block={launch.block}" if backend == "cuda" else ""
            lines.append(f"    {launch.entry}({_args(launch.args)}){geo}")
        if len(sched) > 3:
            lines.append("    ...")
    return "\n".join(lines)


def system_prompt(brief: str, launch: str, language: str, delta: float) -> str:
    role = ("an expert CPU performance engineer writing C11 with OpenMP and SIMD" if language == "c"
            else "an expert CUDA performance engineer writing CUDA C for NVRTC")
    return "\n\n".join([
        f"You are {role}. Your kernels are compiled and timed on the machine described below; each answer is "
        "one complete source file.",
        brief.strip(),
        "## Host launch configuration (fixed by the host; your code must match it)\n" + launch,
        "## Promotion rule\nYour kernel and the current best are timed interleaved in the same process. It "
        f"replaces the best only if the 95% confidence interval of its geometric-mean speedup lies above "
        f"{1 + delta:.2f}x and no size is slower than 0.95x the best. A wrong result at any size scores zero.",
        "## Answer format\nFirst a short explanation (under 150 words) of the optimisation and why it should "
        f"beat the current best. Then exactly one fenced ```{_fence(language)} block with the complete source "
        "defining every entry point with the exact names, argument order and types above. No SEARCH/REPLACE "
        "edits, no other code blocks.",
    ])


@dataclass
class Attempt:
    """One earlier iteration as the prompt sees it (no held-out or private data)."""

    cand_id: int
    generation: int
    slot: int
    artifact: Artifact | None
    feedback: Evaluation | None
    note: str = ""
    origin: str = "synth"
    duel: dict[str, Any] | None = None  # {"speedup", "ci_low", "ci_high", "promote", "reason", "incumbent"}

    @property
    def score(self) -> float | None:
        return self.feedback.score if self.feedback is not None and self.feedback.valid else None


def _clean(ev: Evaluation) -> Evaluation:
    """The feedback evaluation with the case prefix dropped and compile logs trimmed."""
    diags = [re.sub(r"^\[case [^\]]*\] ", "", d) for d in ev.diagnostics]
    if ev.error_kind and "compile" in ev.error_kind:
        diags = ["COMPILE FAILED:", *trim_compile_error("\n".join(diags)).splitlines()]
    return replace(ev, diagnostics=diags)


def result_packet(a: Attempt, spec: FeedbackSpec, task: Any) -> str:
    """Per-size correctness and timing of an attempt, rendered through the run's FeedbackSpec."""
    if a.feedback is None:
        return trim_compile_error(a.note) if a.note else "(no evaluation: the proposal was not usable)"
    return render_evaluation(_clean(a.feedback), spec, task.metrics, task.objective)


def _status(a: Attempt) -> str:
    ev = a.feedback
    if ev is None:
        return "NO USABLE CODE" + (f" ({a.note.splitlines()[0][:120]})" if a.note else "")
    if ev.valid:
        return f"correct, score {ev.score:.4f}"
    kind = ev.error_kind or "invalid"
    if "compile" in kind:
        return "COMPILE FAILED"
    if "static" in kind:
        return "REJECTED by the static check"
    bad = [d for d in ev.diagnostics if "INCORRECT" in d]
    where = re.sub(r"^\[case [^\]]*\] ", "", bad[0]).split(":")[0] if bad else ""
    return f"INCORRECT ({kind})" + (f" first at {where}" if where else "")


def history_line(a: Attempt) -> str:
    who = "seed" if a.origin == "seed" else f"gen {a.generation}" + (f".{a.slot}" if a.slot else "")
    line = f"- {who} #{a.cand_id}: {_status(a)}"
    if a.duel:
        d = a.duel
        if d.get("speedup") is not None:
            line += (f"; vs best #{d.get('incumbent')}: {d['speedup']:.3f}x [CI {d['ci_low']:.3f}, "
                     f"{d['ci_high']:.3f}] -> {'PROMOTED' if d.get('promote') else 'not promoted'}")
        else:
            line += f"; vs best #{d.get('incumbent')}: not promoted ({d.get('reason', 'timing failed')})"
    return line


def stagnating(history: list[Attempt], best_score: float | None) -> bool:
    """The last three correct attempts were all within 15% of the best and none was promoted (spec §2.3)."""
    if best_score is None:
        return False
    scored = [a for a in history if a.origin != "seed" and a.score is not None]
    last = scored[-STAGNATION_WINDOW:]
    return (len(last) == STAGNATION_WINDOW and all(a.score >= STAGNATION_BAND * best_score for a in last)  # type: ignore[operator]
            and not any(a.duel and a.duel.get("promote") for a in last))


def iteration_prompt(task: Any, spec: FeedbackSpec, previous: Attempt, best: Attempt, history: list[Attempt],
                     backend: str, *, first: bool = False, slot: int = 0, of: int = 1) -> str:
    """The user message of one iteration: previous attempt, best (if different), history, instructions.

    ``slot`` of ``of``: proposals written in parallel from the same context are numbered, so that their
    requests differ (a seeded model, or the seeded ``mutate`` baseline, would otherwise answer them alike).
    """
    lang = _fence(task.language)
    parts: list[str] = []
    if first:
        parts.append(f"## Baseline: the naive seed kernel (#{previous.cand_id})")
    else:
        parts.append(f"## Your previous attempt (#{previous.cand_id}, generation {previous.generation})")
    if previous.artifact is not None:
        parts.append(f"```{lang}\n{previous.artifact.content.rstrip()}\n```")
    parts.append("### Its measured result\n" + result_packet(previous, spec, task))
    same = (previous.artifact is not None and best.artifact is not None
            and previous.artifact.content.strip() == best.artifact.content.strip())
    if not same and best.artifact is not None:
        parts.append(f"## Current best (incumbent, #{best.cand_id})")
        parts.append(f"```{lang}\n{best.artifact.content.rstrip()}\n```")
        parts.append("### Its measured result\n" + result_packet(best, spec, task))
    rows = spec.history if spec.history is not None else HISTORY_ROWS  # FeedbackSpec.history overrides
    shown = history[-rows:] if rows else []
    if shown and (len(shown) > 1 or not first):
        parts.append("## History (oldest first)\n" + "\n".join(history_line(a) for a in shown))
    if stagnating(history, best.score):
        parts.append("## Stagnation notice\nThe last attempts circle a local optimum: each was correct and "
                     "close to the best, and none was promoted. Propose a structurally different approach, "
                     "for example:\n" + "\n".join(f"- {h}" for h in STAGNATION_HINTS[backend]))
    steps = ["Fix the failure mode of your previous attempt first, if it had one."] if not first else []
    steps.append("Then make the kernel faster than the current best at every size without breaking "
                 "correctness; keep the entry-point names, argument order and types exactly.")
    if of > 1:
        steps.append(f"This is proposal {slot + 1} of {of} written in parallel from the same context: try an idea "
                     "the other proposals are unlikely to try.")
    steps.append(f"Answer with a short explanation and one complete ```{lang} block.")
    parts.append("## Instructions\n" + "\n".join(f"{i + 1}. {s}" for i, s in enumerate(steps)))
    return "\n\n".join(parts)


def retry_prompt(error: str, code: str | None, language: str) -> str:
    """Why the last answer was unusable (trimmed), with the code that failed (spec §7.12)."""
    msg = f"Your previous answer could not be used.\nProblem:\n{error.strip()}\n"
    if code:
        msg += f"The code that failed:\n```{_fence(language)}\n{code.rstrip()}\n```\n"
    msg += f"Fix the problem and answer again with the complete source in one ```{_fence(language)} block."
    return msg
