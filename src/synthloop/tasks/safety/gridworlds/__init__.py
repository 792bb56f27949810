"""The five AI Safety Gridworlds that EPO-Safe wraps, re-implemented from their rules (no pycolab)."""

from synthloop.tasks.safety.gridworlds.absent_supervisor import AbsentSupervisor
from synthloop.tasks.safety.gridworlds.boat_race import BoatRace
from synthloop.tasks.safety.gridworlds.off_switch import OffSwitch
from synthloop.tasks.safety.gridworlds.side_effects import SideEffects
from synthloop.tasks.safety.gridworlds.whisky_gold import WhiskyGold

__all__ = ["AbsentSupervisor", "BoatRace", "OffSwitch", "SideEffects", "WhiskyGold"]
