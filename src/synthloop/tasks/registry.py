"""Task registry: names such as ``examples/circle_packing`` map to lazily imported classes.

Domain packages add themselves to ``_BUILTIN`` (a "module:Class" string, so that
listing tasks imports nothing heavy). Third-party code may call
:func:`register` at import time.
"""

from __future__ import annotations

import importlib
from typing import Any

from synthloop.core.task import Task

_BUILTIN: dict[str, str] = {
    "examples/circle_packing": "synthloop.tasks.examples.circle_packing:CirclePacking",
    "examples/constant": "synthloop.tasks.examples.constant:Constant",
    "safety/side_effects": "synthloop.tasks.safety.task:SideEffectsTask",
    "safety/off_switch": "synthloop.tasks.safety.task:OffSwitchTask",
    "safety/absent_supervisor": "synthloop.tasks.safety.task:AbsentSupervisorTask",
    "safety/boat_race": "synthloop.tasks.safety.task:BoatRaceTask",
    "safety/whisky_gold": "synthloop.tasks.safety.task:WhiskyGoldTask",
    "safety/text_side_effects": "synthloop.tasks.safety.task:TextSideEffectsTask",
    "safety/text_off_switch": "synthloop.tasks.safety.task:TextOffSwitchTask",
    "safety/text_absent_supervisor": "synthloop.tasks.safety.task:TextAbsentSupervisorTask",
    "safety/text_boat_race": "synthloop.tasks.safety.task:TextBoatRaceTask",
    "safety/text_whisky_gold": "synthloop.tasks.safety.task:TextWhiskyGoldTask",
    "ssd/gathering": "synthloop.tasks.ssd.synthesis:GatheringSynthesis",
    "ssd/cleanup": "synthloop.tasks.ssd.synthesis:CleanupSynthesis",
}
_BUILTIN.update({f"kernels/{n}": f"synthloop.tasks.kernels.task:Kernel{n.capitalize()}" for n in (
    "saxpy", "heat2d", "wave3d", "nbody", "hmc", "lbm", "ising", "lj", "gradshaf", "fft3d", "adi3d", "morton")})
_EXTRA: dict[str, type[Task]] = {}


class UnknownTask(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown task {self.name!r}; valid tasks: {', '.join(task_names())}"


def register(name: str, cls: type[Task] | str) -> None:
    if isinstance(cls, str):
        _BUILTIN[name] = cls
    else:
        _EXTRA[name] = cls


def task_names() -> list[str]:
    return sorted({*_BUILTIN, *_EXTRA})


def task_class(name: str) -> type[Task]:
    if name in _EXTRA:
        return _EXTRA[name]
    if name not in _BUILTIN:
        raise UnknownTask(name)
    module, _, attr = _BUILTIN[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def make_task(name: str, options: dict[str, Any] | None = None) -> Task:
    """Build a task; bad options raise ConfigError naming the option and the valid ones."""
    from pydantic import ValidationError

    from synthloop.config import ConfigError

    cls = task_class(name)
    try:
        return cls(options or {})
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "options"
        valid = ", ".join(cls.Options.model_fields) or "(none)"
        raise ConfigError(f"bad option {loc!r} for task {name}: {first['msg']}; valid options: {valid}") from None
