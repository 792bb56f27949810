"""Run configuration: one pydantic model, loadable from YAML, overridable with ``--set key=value``.

Every field a flag can set lives here, so a YAML file can hold a whole run.
Unknown keys are errors everywhere (``extra="forbid"``): a typo must never be
silently ignored, nor a dead field be credited with an effect.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthloop.feedback.spec import FeedbackSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LLMConfig(_Strict):
    model: str | None = Field(default=None, description="openai/<m>, anthropic/<m>, ollama/<m>, replay:<dir>, mutate")
    base_url: str | None = None
    temperature: float | None = None
    max_tokens: int = Field(default=8192, ge=1)
    seed: int | None = 0
    reasoning_effort: str | None = None
    thinking_budget: int | None = Field(default=None, ge=1024)
    timeout_s: float = Field(default=600.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    backoff_base_s: float = Field(default=1.0, ge=0)
    pricing: str | None = Field(default=None, description="YAML price table merged over the built-in one")


class SearchConfig(_Strict):
    strategy: Literal["refine", "one_plus_one", "best_of_n"] = "one_plus_one"
    iterations: int = Field(default=20, ge=0, description="refine: K; one_plus_one: children; best_of_n: N")
    concurrency: int = Field(default=1, ge=1, description="proposals in flight at once")
    parent: Literal["latest", "best"] = Field(default="latest", description="refine: which candidate to refine")
    retries: int = Field(default=2, ge=0, description="re-asks per proposal after an invalid answer")
    noise_repeats: int = Field(default=1, ge=1, description="one_plus_one: evaluations of the champion for sigma")
    noise_z: float = Field(default=2.0, ge=0)
    min_delta: float = Field(default=0.0, ge=0, description="one_plus_one: minimum improvement to accept")
    diffs: bool = Field(default=True, description="allow SEARCH/REPLACE answers besides full rewrites")
    smoke_test: bool = Field(default=False, description="run the task's smoke case before a full evaluation")


class BudgetConfig(_Strict):
    max_cost_usd: float | None = Field(default=None, gt=0)
    max_llm_calls: int | None = Field(default=None, ge=1)
    max_wall_s: float | None = Field(default=None, gt=0)


class GateConfig(_Strict):
    top_k: int = Field(default=1, ge=1, description="candidates scored on the held-out pool at the end")
    max_drop: float = Field(default=0.05, ge=0, description="relative held-out drop that is flagged")


class ExecutionConfig(_Strict):
    executor: Literal["local", "ray"] = "local"
    workers: int | None = Field(default=None, ge=1)
    ray_address: str | None = None
    wall_s: float | None = Field(default=None, gt=0, description="override the task's per-case wall limit")
    memory_mb: int | None = Field(default=None, ge=64, description="override the task's memory limit")


class RunConfig(_Strict):
    task: str
    task_options: dict[str, Any] = Field(default_factory=dict)
    feedback: FeedbackSpec = Field(default_factory=FeedbackSpec)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    out: str | None = None

    def digest(self) -> str:
        blob = json.dumps(self.model_dump(mode="json", exclude={"out"}), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ConfigError(ValueError):
    """A one-line, user-facing configuration problem."""


def _valid_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys.extend(_valid_keys(ann, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _parse_value(raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=value`` to a nested dict, checking the path against RunConfig."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    model: type[BaseModel] | None = RunConfig
    for i, part in enumerate(parts):
        if model is None:
            break  # inside a free-form dict (task_options)
        if part not in model.model_fields:
            where = ".".join(parts[:i]) or "the run config"
            valid = ", ".join(_valid_keys(RunConfig)) if i == 0 else ", ".join(model.model_fields)
            raise ConfigError(f"unknown config key {key!r} (no {part!r} in {where}); valid keys: {valid}")
        ann = model.model_fields[part].annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {key!r}: {part!r} is not a mapping")
    node[parts[-1]] = _parse_value(raw)


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {str(p)!r} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping, not {type(data).__name__}")
    return data


def build_config(data: dict[str, Any]) -> RunConfig:
    """Validate a nested dict into a RunConfig, with a one-line error on failure."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "config"
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"unknown config key {loc!r}; valid keys: {', '.join(_valid_keys(RunConfig))}") from None
        raise ConfigError(f"bad config value for {loc!r}: {err['msg']}") from None
