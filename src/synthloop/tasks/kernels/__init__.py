"""Kernel search tasks (Metal-Sci suite) on portable backends: ``cpu`` (C + OpenMP) and ``cuda`` (NVRTC).

Layout: ``spec`` (backend-neutral schema), ``defs/`` (the twelve tasks), ``seeds/`` (seed kernels per backend),
``refcache`` (cached references), ``cpu_backend`` / ``cuda_backend`` (runners), ``worker`` (the child process
that executes candidate code), ``evaluate`` (the trusted orchestration and checks), ``ceilings`` and
``fitness`` (roofline scoring), ``promotion`` (noise-aware acceptance), ``gate`` (end-of-run held-out gate), ``antihack`` (static checks),
``bench`` (the ``bench kernels`` command) and ``task`` (synthloop Task glue; the only module that imports
synthloop.core). Everything but ``task`` imports without pydantic.
"""

from synthloop.tasks.kernels.catalog import TASK_NAMES, get_task

__all__ = ["TASK_NAMES", "get_task"]
