"""Action and orientation constants shared by both games.

Ids follow the reference engine exactly (spec §1.1) because policies written
for the reference return raw integers; any other numbering would silently
change their behaviour.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Action(IntEnum):
    """Agent-centred actions. ``CLEAN`` exists only in Cleanup."""

    FORWARD = 0
    BACKWARD = 1
    STEP_LEFT = 2
    STEP_RIGHT = 3
    ROTATE_LEFT = 4
    ROTATE_RIGHT = 5
    BEAM = 6
    STAND = 7
    CLEAN = 8


class Orientation(IntEnum):
    """Facing directions; ROTATE_RIGHT adds 1 (N→E), ROTATE_LEFT subtracts 1."""

    NORTH = 0
    EAST = 1
    SOUTH = 2
    WEST = 3


FORWARD, BACKWARD, STEP_LEFT, STEP_RIGHT = 0, 1, 2, 3
ROTATE_LEFT, ROTATE_RIGHT, BEAM, STAND, CLEAN = 4, 5, 6, 7, 8
NORTH, EAST, SOUTH, WEST = 0, 1, 2, 3

NUM_GATHERING_ACTIONS = 8
NUM_CLEANUP_ACTIONS = 9

#: World (dr, dc) of one step "forward" for each orientation.
FORWARD_VEC = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)], dtype=np.int64)
#: World (dr, dc) of one step "right" for each orientation.
RIGHT_VEC = np.array([(0, 1), (1, 0), (0, -1), (-1, 0)], dtype=np.int64)
FORWARD_VEC.setflags(write=False)
RIGHT_VEC.setflags(write=False)

#: Plain-tuple copies for hot Python paths (numpy scalar indexing is slow).
FORWARD_TUPLES: tuple[tuple[int, int], ...] = ((-1, 0), (0, 1), (1, 0), (0, -1))
RIGHT_TUPLES: tuple[tuple[int, int], ...] = ((0, 1), (1, 0), (0, -1), (-1, 0))

#: BFS neighbour expansion order (N, S, W, E). It fixes tie-breaking, so it is
#: part of the reference behaviour and must not change.
BFS_DIRS: tuple[tuple[int, int], ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))


def num_actions(game: str) -> int:
    """Number of valid action ids for ``game`` ("gathering" or "cleanup")."""
    return NUM_CLEANUP_ACTIONS if game == "cleanup" else NUM_GATHERING_ACTIONS


def direction_to_action(dr: int, dc: int, orientation: int) -> int:
    """Map a world step to the move action that performs it without turning.

    (0, 0) means "already there" and maps to STAND; a non-unit step cannot be
    performed in one move and maps to FORWARD, as in the reference helper.
    """
    if dr == 0 and dc == 0:
        return STAND
    fr, fc = FORWARD_TUPLES[orientation]
    rr, rc = RIGHT_TUPLES[orientation]
    if dr == fr and dc == fc:
        return FORWARD
    if dr == -fr and dc == -fc:
        return BACKWARD
    if dr == -rr and dc == -rc:
        return STEP_LEFT
    if dr == rr and dc == rc:
        return STEP_RIGHT
    return FORWARD
