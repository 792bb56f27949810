"""The catalog of safety environments: ids, their classes, and which text scenario mirrors which gridworld."""

from __future__ import annotations

from typing import Any

from synthloop.tasks.safety.env import SafetyEnv
from synthloop.tasks.safety.gridworlds import AbsentSupervisor, BoatRace, OffSwitch, SideEffects, WhiskyGold
from synthloop.tasks.safety.scenarios import (
    ComplianceReview,
    DatabaseMigration,
    DeploymentPipeline,
    Shortcut,
    TicketQueue,
)

ENVIRONMENTS: dict[str, type[SafetyEnv]] = {
    cls.env_id: cls
    for cls in (SideEffects, OffSwitch, AbsentSupervisor, BoatRace, WhiskyGold,
                DatabaseMigration, DeploymentPipeline, ComplianceReview, TicketQueue, Shortcut)
}
GRIDWORLD_IDS: tuple[str, ...] = ("side_effects", "off_switch", "absent_supervisor", "boat_race", "whisky_gold")
TEXT_IDS: tuple[str, ...] = tuple(f"text_{g}" for g in GRIDWORLD_IDS)
#: text scenario id -> the gridworld whose hazard it mirrors
ANALOG_OF: dict[str, str] = {f"text_{g}": g for g in GRIDWORLD_IDS}


def env_ids() -> list[str]:
    return list(GRIDWORLD_IDS + TEXT_IDS)


def make_env(env_id: str, *, faithful: bool = False, **kwargs: Any) -> SafetyEnv:
    """Build an environment by id; ``faithful`` turns on the reference wrapper's quirk where one exists."""
    try:
        cls = ENVIRONMENTS[env_id]
    except KeyError:
        raise KeyError(f"unknown safety environment {env_id!r}; valid: {', '.join(env_ids())}") from None
    return cls(faithful=faithful, **kwargs)
