"""Autoresearch: an outer-loop researcher that redesigns the inner synthesis pipeline.

The researcher edits four files in a git workspace (system prompt template,
sandboxed feedback builder, helper library, iteration config); scores come
only from a local evaluation service that enforces the budget, verifies the
hashes of everything frozen, and never reveals per-seed or held-out results;
the harness applies a paired, noise-calibrated keep rule and a final
held-out gate. An external researcher CLI runs in a jail (:mod:`.jail`); an
interrupted run resumes from its ledger (:func:`resume_autoresearch`).
Task-agnostic: any registered synthloop task is the inner loop.
"""

from synthloop.autoresearch.harness import Budget, Harness, KeepRule, keep_decision
from synthloop.autoresearch.jail import JailError, JailPolicy, ResearcherJail
from synthloop.autoresearch.ledger import Ledger
from synthloop.autoresearch.measure import InnerSetup, Measurer, Stat, frozen_manifest
from synthloop.autoresearch.pipeline import (
    EDITABLE,
    Pipeline,
    PipelineConfig,
    PipelineError,
    PipelineMessages,
)
from synthloop.autoresearch.researcher import BuiltinResearcher, parse_tool_call, run_external
from synthloop.autoresearch.run import (
    AutoresearchConfig,
    RunResult,
    load_config,
    resume_autoresearch,
    run_autoresearch,
)
from synthloop.autoresearch.service import EvalService
from synthloop.autoresearch.workspace import Refused, Workspace

__all__ = [
    "EDITABLE", "AutoresearchConfig", "Budget", "BuiltinResearcher", "EvalService", "Harness", "InnerSetup",
    "JailError", "JailPolicy", "KeepRule", "Ledger", "Measurer", "Pipeline", "PipelineConfig", "PipelineError",
    "PipelineMessages", "Refused", "ResearcherJail", "RunResult", "Stat", "Workspace", "frozen_manifest",
    "keep_decision", "load_config", "parse_tool_call", "resume_autoresearch", "run_autoresearch", "run_external",
]
