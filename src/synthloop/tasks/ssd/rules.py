"""Rule variants: the reference's quirks as named, documented switches.

``reference`` (the default) reproduces the released engine, because every
published number was measured with it. Each other variant fixes one quirk
from spec §8.2 so its effect can be ablated; ``fixed`` applies all of them.
Variants combine with ``+`` (e.g. ``blocking+walls-block-beams``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Rules:
    """Switches that differ between the reference engine and its fixes.

    Attributes:
        name: the variant string this was built from.
        agent_collision: a move into a cell held by another on-board agent
            fails (DeepMind's originals). Reference: agents stack freely.
        walls_block_beams: a beam lane stops at the first wall, in the engine
            and in the helpers alike. Reference: the engine's beams pass
            through walls while the planning helpers treat walls as blocking.
        remove_tagged: tagged agents leave the board while timed out: they
            occupy no cell (spawn rules, collisions) and are not drawn; they
            return at the cell where they were tagged. Reference: they stay.
        padding_walls: ragged map lines are padded with walls instead of
            walkable cells.
        shared_policy_rng: built-in random agents draw their actions from the
            environment's generator (reference draw order, needed for Cleanup
            parity). True only for ``reference``; every other variant gives
            each random agent its own generator seeded by (seed, agent id).
    """

    name: str = "reference"
    agent_collision: bool = False
    walls_block_beams: bool = False
    remove_tagged: bool = False
    padding_walls: bool = False
    shared_policy_rng: bool = True


_FIXES: dict[str, dict[str, bool]] = {
    "reference": {},
    "blocking": {"agent_collision": True},
    "walls-block-beams": {"walls_block_beams": True},
    "remove-tagged": {"remove_tagged": True},
    "padding-walls": {"padding_walls": True},
    "separate-rng": {"shared_policy_rng": False},
    "fixed": {
        "agent_collision": True,
        "walls_block_beams": True,
        "remove_tagged": True,
        "padding_walls": True,
        "shared_policy_rng": False,
    },
}

RULE_NAMES: tuple[str, ...] = tuple(_FIXES)


def get_rules(name: str | Rules = "reference") -> Rules:
    """Build the :class:`Rules` for a variant name such as ``"blocking"`` or
    ``"blocking+remove-tagged"``; raises ``KeyError`` listing valid names."""
    if isinstance(name, Rules):
        return name
    rules = Rules(name=name)
    parts = [p.strip() for p in name.split("+") if p.strip()]
    if not parts:
        raise KeyError(f"empty rules name; valid rules: {', '.join(RULE_NAMES)}")
    for part in parts:
        if part not in _FIXES:
            raise KeyError(f"unknown rules {part!r}; valid rules: {', '.join(RULE_NAMES)} (combine with '+')")
        rules = replace(rules, **_FIXES[part])
    if any(part != "reference" for part in parts):
        # Outside exact parity, random agents get their own generator so they
        # no longer perturb the environment's stream (spec §8.2 #11).
        rules = replace(rules, shared_policy_rng=False)
    return rules
