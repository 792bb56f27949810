"""The Ray executor: the same sandboxed per-case run, on Ray workers (for runs that outgrow one machine).

Each case is one Ray task. The worker rebuilds the task from its registry name
and options (cached per worker process, so warm caches survive between cases)
and calls :func:`synthloop.execution.sandbox.run_case_raw`, which forks a fresh
supervisor + candidate exactly as the local executor does. What travels back is
the encoded outcome (JSON metadata + the candidate's raw JSON bytes) produced by
trusted sandbox code; the driver decodes it with ``json.loads`` only.

Ray is an optional dependency (``pip install "synthloop[ray]"``) and is imported
lazily. Every machine in the cluster must have synthloop (and the task's module)
installed; a task registered at run time is found on workers through its
``module:Class`` path.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from synthloop.core.task import Task
from synthloop.core.types import Artifact, Case
from synthloop.execution import sandbox as sb
from synthloop.execution.base import CaseOutcome, Executor, Limits

#: extra seconds on top of the sandbox's own backstop before the driver gives up on a Ray task
#: (scheduling and object transfer on a busy cluster)
RAY_SLACK_S = 30.0

_TASKS: dict[tuple[str, str], Task] = {}


def _ray_run_case(task_name: str, options: dict[str, Any], class_path: str, artifact_d: dict[str, Any],
                  case_d: dict[str, Any], limits: Limits) -> bytes:
    """Runs on a Ray worker: rebuild (or reuse) the task, run one case in the sandbox."""
    from synthloop.tasks.registry import UnknownTask, make_task, register

    key = (task_name, json.dumps(options, sort_keys=True, default=str))
    task = _TASKS.get(key)
    if task is None:
        try:
            task = make_task(task_name, options)
        except UnknownTask:
            register(task_name, class_path)
            task = make_task(task_name, options)
        _TASKS[key] = task
    return sb.run_case_raw(task, artifact_d, case_d, limits)


class RayExecutor(Executor):
    """Sandboxed cases on a Ray cluster (``address``) or a local Ray instance (``address=None``)."""

    name = "ray"

    def __init__(self, task_name: str, task_options: dict[str, Any] | None = None, address: str | None = None,
                 workers: int | None = None) -> None:
        self.task_name = task_name
        self.task_options = dict(task_options or {})
        self.address = address
        self.workers = workers
        self._owns_ray = False
        self._remote: Any = None
        self._class_path = ""

    def start(self) -> None:
        if self._remote is not None:
            return
        try:
            import ray
        except ImportError:
            raise RuntimeError('the ray executor needs Ray: pip install "synthloop[ray]"') from None
        from synthloop.tasks.registry import task_class

        cls = task_class(self.task_name)  # unknown task: fail here, in the driver, with the valid names
        self._class_path = f"{cls.__module__}:{cls.__qualname__}"
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:  # a private local instance; workers import what the driver can
                path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
                ray.init(num_cpus=self.workers or 2, include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": {"PYTHONPATH": path}})
            self._owns_ray = True
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_ray_run_case)

    async def run(self, artifact: Artifact, cases: list[Case], limits: Limits) -> list[CaseOutcome]:
        if self._remote is None:
            raise RuntimeError("RayExecutor.run() called before start()")
        a_d = artifact.to_dict()
        return list(await asyncio.gather(*(self._run_case(a_d, c, limits) for c in cases)))

    async def _run_case(self, a_d: dict[str, Any], case: Case, limits: Limits) -> CaseOutcome:
        import ray

        ref = self._remote.remote(self.task_name, self.task_options, self._class_path, a_d, case.to_dict(), limits)
        timeout = limits.wall_s + sb.BACKSTOP_S + RAY_SLACK_S
        try:
            raw = await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout)
        except asyncio.TimeoutError:
            ray.cancel(ref, force=True)
            return sb.sandbox_failure(case.id, f"no result from the Ray worker within {timeout:g} s; task cancelled")
        except asyncio.CancelledError:
            ray.cancel(ref, force=True)
            raise
        except Exception as e:  # noqa: BLE001 - worker died, cluster lost, ...: never the candidate's fault
            return sb.sandbox_failure(case.id, f"Ray task failed: {type(e).__name__}: {str(e)[:500]}")
        try:
            return sb.decode_outcome(raw)
        except (ValueError, TypeError) as e:
            return sb.sandbox_failure(case.id, f"unreadable sandbox outcome from Ray: {e}")

    def close(self) -> None:
        if self._remote is None:
            return
        self._remote = None
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False
