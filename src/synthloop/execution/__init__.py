"""Sandboxed execution of candidate code: the ``local`` and ``ray`` executors.

``make_executor`` is the one entry point the engine and CLI need; the
sandbox itself (namespaces, rlimits, privilege drop) lives in
:mod:`synthloop.execution.sandbox`.

``Limits`` lives in :mod:`synthloop.core.types` and is re-exported here. The
executors load lazily, so importing this package starts no sandbox machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthloop.execution.base import ERROR_KINDS, CaseOutcome, Executor, Limits

if TYPE_CHECKING:
    from synthloop.core.task import Task
    from synthloop.execution.local import LocalExecutor
    from synthloop.execution.ray_executor import RayExecutor

EXECUTORS = ("local", "ray")

__all__ = ["ERROR_KINDS", "EXECUTORS", "CaseOutcome", "Executor", "Limits", "LocalExecutor", "RayExecutor",
           "make_executor"]


def __getattr__(name: str) -> Any:
    if name == "LocalExecutor":
        from synthloop.execution.local import LocalExecutor

        return LocalExecutor
    if name == "RayExecutor":
        from synthloop.execution.ray_executor import RayExecutor

        return RayExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_executor(name: str, task: Task, task_name: str, task_options: dict[str, Any] | None = None,
                  workers: int | None = None, ray_address: str | None = None) -> Executor:
    """Build an executor by name. ``ray`` rebuilds the task on workers from ``task_name``/``task_options``."""
    if name == "local":
        from synthloop.execution.local import LocalExecutor

        return LocalExecutor(task, workers=workers)
    if name == "ray":
        from synthloop.execution.ray_executor import RayExecutor

        return RayExecutor(task_name, task_options or {}, address=ray_address, workers=workers)
    raise ValueError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")
