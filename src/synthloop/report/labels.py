"""The words every report uses for who proposed the candidates and what it cost.

``mutate`` is a baseline that perturbs constants without any model, so a run
that used it reports *proposals* and ``baseline: mutate``, never "LLM calls"
(a reader comparing tables must not take blind mutation for a model). A model
with no known price at the endpoint the run used reports ``unpriced``, never
``$0.0000`` (which reads as "free"). ``show``, the HTML report, sweeps, the
progress bar and the social-dilemma table and report all take their labels
from here, so they cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

UNPRICED = "unpriced"


def is_baseline(synth: dict[str, Any] | None) -> bool:
    """Whether the run's synthesizer is an offline baseline (``mutate``), not a model."""
    return (synth or {}).get("kind") == "baseline"


def baseline_label(name: str) -> str:
    """``baseline: mutate``: how a baseline is named wherever a model's name would stand."""
    return f"baseline: {name}"


def method_label(model: str | None) -> str:
    """A table's method column for a run's model string: ``baseline: mutate`` or ``LLM <model>``."""
    if model == "mutate":
        return baseline_label(model)
    if model and model.startswith("replay:"):
        return f"replay {model[len('replay:'):]}"
    return f"LLM {model or '?'}"


def synthesizer_label(synth: dict[str, Any] | None) -> str:
    """``baseline: mutate (offline, no LLM)``, ``openai/m (LLM at URL)``, ``replay:DIR (recorded answers)``."""
    if not synth:
        return "not started"
    name = str(synth.get("name") or "?")
    kind = synth.get("kind")
    if kind == "baseline":
        return f"{baseline_label(name)} (offline, no LLM)"
    if kind == "replay":
        return f"{name} (recorded LLM answers, no new calls)"
    where = synth.get("base_url")
    return f"{name} (LLM at {where})" if where else f"{name} (LLM)"


def priced(synth: dict[str, Any] | None) -> bool:
    """False only when the synthesizer said it has no price (older runs without the key count as priced)."""
    return (synth or {}).get("priced") is not False


def cost_text(cost_usd: float | None, synth: dict[str, Any] | None) -> str:
    """``$0.0123``, or ``unpriced`` when the model has no price at the endpoint the run used."""
    if not priced(synth):
        return UNPRICED
    return f"${float(cost_usd or 0.0):.4f}"


def calls_text(totals: dict[str, Any], synth: dict[str, Any] | None) -> str:
    """The first part of a totals line: proposals of a baseline, or LLM calls with tokens and cost."""
    failed = f" ({totals.get('errors') or 0} failed)"
    if is_baseline(synth):
        failed = failed if totals.get("errors") else ""
        return f"proposals {totals.get('calls', 0)}{failed} by {baseline_label(str((synth or {}).get('name')))} (no LLM)"
    noun = "replayed LLM calls" if (synth or {}).get("kind") == "replay" else "LLM calls"
    return (f"{noun} {totals.get('calls', 0)}{failed}, tokens in {totals.get('input_tokens', 0)} out "
            f"{totals.get('output_tokens', 0)}, cost {cost_text(totals.get('cost_usd'), synth)}")


def totals_line(totals: dict[str, Any], synth: dict[str, Any] | None) -> str:
    """The whole totals line of ``synthloop show``."""
    return (f"{calls_text(totals, synth)}, wall {float(totals.get('wall_s') or 0.0):.1f} s, "
            f"candidates {totals.get('candidates', 0)} ({totals.get('invalid', 0)} invalid)")


def unpriced_note(synth: dict[str, Any] | None) -> str | None:
    """One line saying why the cost is unpriced and how to price it, or None when it is priced."""
    if priced(synth):
        return None
    reason = (synth or {}).get("unpriced_reason") or f"no price known for {(synth or {}).get('name')}"
    return f"cost unpriced: {reason}"


def run_cost_kind(run_dir: Path | None) -> tuple[str | None, bool]:
    """``(baseline label or None, priced)`` for a run directory's model, decided without building its client:
    the progress bar starts before the synthesizer exists (and no API key may be on the heap before the fork)."""
    if run_dir is None:
        return None, True
    from synthloop.config import ConfigError
    from synthloop.llm.factory import pricing_status
    from synthloop.runner import load_run_config

    try:
        llm = load_run_config(run_dir).llm
        model = llm.model or "mutate"
        if model == "mutate":
            return baseline_label(model), True
        return None, pricing_status(model, llm.base_url, llm.pricing)[0]
    except (ConfigError, ValueError, OSError):  # a bad price file or config: the run itself says so, in one line
        return None, True
