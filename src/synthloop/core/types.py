"""The data that flows through a run: artifacts, evaluation cases, evaluations.

Everything here is a plain dataclass that converts to and from JSON-ready
dicts, because every value is stored in the run database and some of it
crosses process boundaries (candidate outputs come back from the sandbox as
JSON, never as pickles).

The one contract to remember is :class:`Evaluation`:

* ``score`` is the objective (higher is better after applying the task's
  direction); it is ``None`` when the artifact is invalid.
* ``metrics`` are named numbers; their direction and description live in the
  task's :class:`MetricSpec` list.
* ``diagnostics`` are human-readable lines (compile errors, tracebacks,
  per-case correctness) that a FeedbackSpec may show to the synthesizer.
* ``private`` holds values that must never reach a prompt (hidden rewards such
  as R*, held-out scores, integrity verdicts). The prompt renderer has no code
  path that reads it.
* ``channels`` holds safety signals (for example a danger bit per step). They
  are recorded separately and never folded into ``score``.

Example::

    Evaluation(valid=True, score=2.61, metrics={"sum_radii": 2.61},
               diagnostics=["26 circles, min gap 3e-5"], pool="feedback")
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Direction = Literal["max", "min"]
POOLS: tuple[str, ...] = ("feedback", "selection", "heldout")


@dataclass(frozen=True)
class MetricSpec:
    """A named metric a task can report, with its direction and meaning."""

    name: str
    direction: Direction = "max"
    description: str = ""
    unit: str = ""


@dataclass
class Artifact:
    """What the synthesizer writes: code (Python, C, CUDA) or text (a specification)."""

    content: str
    language: str = "python"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def sha(self) -> str:
        return hashlib.sha256(f"{self.language}\0{self.content}".encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"content": self.content, "language": self.language, "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Artifact:
        return cls(content=d["content"], language=d.get("language", "python"), meta=dict(d.get("meta", {})))


@dataclass(frozen=True)
class Case:
    """One evaluation case (a seed, a problem size, an episode). ``params`` is JSON-ready."""

    id: str
    pool: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "pool": self.pool, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Case:
        return cls(id=str(d["id"]), pool=d["pool"], params=dict(d.get("params", {})))


@dataclass
class CasePools:
    """Evaluation cases split by purpose.

    * ``feedback``: results are shown to the synthesizer;
    * ``selection``: used to choose the best-so-far, never shown;
    * ``heldout``: scored once at the end by the gate, never shown.
    """

    feedback: list[Case] = field(default_factory=list)
    selection: list[Case] = field(default_factory=list)
    heldout: list[Case] = field(default_factory=list)

    def get(self, pool: str) -> list[Case]:
        if pool not in POOLS:
            raise ValueError(f"unknown pool {pool!r}; valid pools: {', '.join(POOLS)}")
        return list(getattr(self, pool))

    def __post_init__(self) -> None:
        for pool in POOLS:
            for c in getattr(self, pool):
                if c.pool != pool:
                    raise ValueError(f"case {c.id!r} is labelled {c.pool!r} but placed in pool {pool!r}")


@dataclass(frozen=True)
class Limits:
    """Hard limits for one sandboxed case run."""

    wall_s: float = 10.0
    cpu_s: float | None = None  # default: wall_s rounded up + 1
    memory_mb: int = 2048  # RLIMIT_AS
    nproc: int = 64  # RLIMIT_NPROC (where the OS enforces it)
    fsize_mb: int = 16  # RLIMIT_FSIZE: largest file the candidate may write (stdout/stderr included)
    output_chars: int = 20_000  # stdout/stderr kept per stream
    result_mb: int = 64  # largest JSON result accepted back
    network: bool = False  # allow network (default: a fresh, empty network namespace where possible)


@dataclass
class CaseResult:
    """The judged result of one case."""

    case_id: str
    ok: bool
    score: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    diagnostics: list[str] = field(default_factory=list)
    private: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)
    error_kind: str | None = None
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaseResult:
        return cls(**d)


@dataclass
class Evaluation:
    """The result of evaluating one artifact on one pool of cases."""

    valid: bool
    score: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    diagnostics: list[str] = field(default_factory=list)
    private: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)
    cases: list[CaseResult] = field(default_factory=list)
    pool: str = "feedback"
    cost_s: float = 0.0
    error_kind: str | None = None

    def __post_init__(self) -> None:
        if self.valid and (self.score is None or not math.isfinite(self.score)):
            self.valid = False
            self.diagnostics = [*self.diagnostics, f"non-finite score {self.score!r}: treated as invalid"]
            self.score = None
            self.error_kind = self.error_kind or "non_finite"
        if not self.valid:
            self.score = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Evaluation:
        d = dict(d)
        d["cases"] = [CaseResult.from_dict(c) for c in d.get("cases", [])]
        return cls(**d)

    @classmethod
    def invalid(cls, reason: str, pool: str = "feedback", error_kind: str = "invalid", **kw: Any) -> Evaluation:
        return cls(valid=False, score=None, diagnostics=[reason], pool=pool, error_kind=error_kind, **kw)
