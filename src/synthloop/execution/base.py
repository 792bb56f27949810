"""The executor contract: where untrusted candidate code runs.

An executor takes an artifact and a list of cases and returns one
:class:`CaseOutcome` per case. For each case it runs ``task.run(artifact,
case)`` inside a sandboxed process (never the engine's own process) and
brings back the JSON-serialisable output, or a failure with a clear reason.
Judging the output (``task.judge``) happens afterwards in the trusted engine
process, so candidate code cannot tamper with the scorer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from synthloop.core.types import Artifact, Case, Limits  # Limits lives in core; re-exported here

# Failure kinds an outcome can carry (``None`` means success).
ERROR_KINDS = (
    "timeout",  # wall-clock limit hit; the whole process tree was killed
    "cpu",  # RLIMIT_CPU hit (SIGXCPU / SIGKILL)
    "memory",  # allocation failed under RLIMIT_AS (MemoryError) or OOM kill
    "exception",  # the candidate raised; ``error`` holds the traceback
    "crash",  # died from a signal (segfault, abort, ...)
    "exit",  # called exit / os._exit without producing a result
    "output",  # result not JSON-serialisable or over the size limit
    "sandbox",  # the sandbox itself failed (reported, never silently ignored)
)


@dataclass
class CaseOutcome:
    case_id: str
    ok: bool
    output: Any = None
    error_kind: str | None = None
    error: str = ""
    stdout: str = ""
    stderr: str = ""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_mb: float = 0.0
    isolation: dict[str, Any] = field(default_factory=dict)  # what the OS granted (netns, uid, ...)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Executor(ABC):
    """Runs ``task.run`` for candidate artifacts in sandboxed processes."""

    name: str = "abstract"

    @abstractmethod
    def start(self) -> None:
        """Prepare workers (called once, before the engine's event loop starts threads)."""

    @abstractmethod
    async def run(self, artifact: Artifact, cases: list[Case], limits: Limits) -> list[CaseOutcome]:
        """Run every case (in parallel where capacity allows); never raises for candidate faults."""

    @abstractmethod
    def close(self) -> None:
        """Stop all workers; kills anything still running."""

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
