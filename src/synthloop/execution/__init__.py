"""Sandboxed execution of candidate code: the ``local`` and ``ray`` executors.

``make_executor`` is the one entry point the engine and CLI need; the
sandbox itself (namespaces, rlimits, privilege drop) lives in
:mod:`synthloop.execution.sandbox`.

``Limits`` lives in :mod:`synthloop.core.types` and is re-exported here. The
executors load lazily, so importing this package starts no sandbox machinery.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from synthloop.execution.base import ERROR_KINDS, CaseOutcome, Executor, Limits

if TYPE_CHECKING:
    from synthloop.core.task import Task
    from synthloop.execution.local import LocalExecutor
    from synthloop.execution.ray_executor import RayExecutor

EXECUTORS = ("local", "ray")
#: the import each optional executor needs, and the extra of pyproject.toml that installs it
EXECUTOR_EXTRAS = {"ray": ("ray", "ray")}

__all__ = ["ERROR_KINDS", "EXECUTORS", "CaseOutcome", "Executor", "Limits", "LocalExecutor", "MissingExtra",
           "RayExecutor", "check_executor", "make_executor", "require_extra"]


class MissingExtra(ImportError):
    """An optional dependency (an extra of pyproject.toml) that the chosen setting needs is not installed.

    Raised before any work starts, so the command line can print one line naming the install command
    instead of failing later, deep in a run, with a traceback and a half-made run directory.
    """


def _installed(module: str) -> bool:
    # find_spec does not import the module (importing Ray takes seconds and starts nothing we want yet);
    # a module blocked by `sys.modules[name] = None` makes it raise ValueError: that is "not installed" too
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_extra(module: str, extra: str, what: str) -> None:
    """Raise :class:`MissingExtra` if ``module`` cannot be imported; ``what`` names the setting that needs it."""
    if not _installed(module):
        raise MissingExtra(f'{what} needs {module}, which is not installed: pip install -e ".[{extra}]" '
                           f'(or pip install "synthloop[{extra}]")')


def check_executor(name: str) -> None:
    """Fail fast on an unknown executor or one whose optional dependency is missing; builds nothing."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")
    if name in EXECUTOR_EXTRAS:
        module, extra = EXECUTOR_EXTRAS[name]
        require_extra(module, extra, f"--executor {name}")


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
    check_executor(name)
    if name == "local":
        from synthloop.execution.local import LocalExecutor

        return LocalExecutor(task, workers=workers)
    from synthloop.execution.ray_executor import RayExecutor

    return RayExecutor(task_name, task_options or {}, address=ray_address, workers=workers)
