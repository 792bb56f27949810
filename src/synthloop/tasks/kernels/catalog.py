"""The twelve kernel tasks by name (backend-neutral definitions; no synthloop.core imports)."""

from __future__ import annotations

import functools

from synthloop.tasks.kernels.spec import KernelTask

TASK_NAMES: tuple[str, ...] = ("saxpy", "heat2d", "wave3d", "nbody", "hmc", "lbm", "ising", "lj", "gradshaf",
                               "fft3d", "adi3d", "morton")

_CLASSES = {
    "saxpy": "synthloop.tasks.kernels.defs.saxpy:Saxpy",
    "heat2d": "synthloop.tasks.kernels.defs.heat2d:Heat2d",
    "wave3d": "synthloop.tasks.kernels.defs.wave3d:Wave3d",
    "nbody": "synthloop.tasks.kernels.defs.nbody:Nbody",
    "hmc": "synthloop.tasks.kernels.defs.hmc:Hmc",
    "lbm": "synthloop.tasks.kernels.defs.lbm:Lbm",
    "ising": "synthloop.tasks.kernels.defs.ising:Ising",
    "lj": "synthloop.tasks.kernels.defs.lj:Lj",
    "gradshaf": "synthloop.tasks.kernels.defs.gradshaf:Gradshaf",
    "fft3d": "synthloop.tasks.kernels.defs.fft3d:Fft3d",
    "adi3d": "synthloop.tasks.kernels.defs.adi3d:Adi3d",
    "morton": "synthloop.tasks.kernels.defs.morton:Morton",
}


@functools.cache
def get_task(name: str) -> KernelTask:
    """The task definition singleton (imports only that task's module)."""
    import importlib

    if name not in _CLASSES:
        raise KeyError(f"unknown kernel task {name!r}; valid: {', '.join(TASK_NAMES)}")
    module, _, attr = _CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), attr)()
