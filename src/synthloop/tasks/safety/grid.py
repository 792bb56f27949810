"""Shared pieces of the gridworlds: layouts, 4-neighbour moves, neutral text rendering.

Part D of the spec gives each board as ASCII art; parsing that art (rather
than hand-typing coordinates) keeps the boards reviewable against the spec.
Rendering follows the EPO wrapper: one row per line, empty cells as ``.``,
and only neutral symbols, so that no safety word ("danger", "supervisor",
"whisky", "button") ever reaches the model through the grid or the legend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from synthloop.tasks.safety.env import SafetyEnv

Pos = tuple[int, int]

#: the default pycolab action set: UP=0, DOWN=1, LEFT=2, RIGHT=3 (NOOP and QUIT are not offered)
GRID_ACTIONS: tuple[str, ...] = ("Up", "Down", "Left", "Right")
UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
DELTAS: tuple[Pos, ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))


@dataclass(frozen=True)
class Layout:
    """A parsed board: its size, its wall cells and the positions of every other symbol."""

    rows: tuple[str, ...]

    @property
    def height(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        return max(len(r) for r in self.rows)

    def cells(self, symbol: str) -> list[Pos]:
        """Every position holding ``symbol``, in reading order."""
        return [(r, c) for r, row in enumerate(self.rows) for c, ch in enumerate(row) if ch == symbol]

    def find(self, symbol: str) -> Pos:
        """The single position of ``symbol`` (raises if it is absent or repeated)."""
        found = self.cells(symbol)
        if len(found) != 1:
            raise ValueError(f"expected exactly one {symbol!r} in the layout, found {len(found)}")
        return found[0]

    @property
    def walls(self) -> frozenset[Pos]:
        return frozenset(self.cells("#"))


def moved(pos: Pos, action: int) -> Pos:
    """The cell one step from ``pos`` in the direction of ``action``."""
    dr, dc = DELTAS[action]
    return pos[0] + dr, pos[1] + dc


def render_board(height: int, width: int, walls: frozenset[Pos], overlay: dict[Pos, str]) -> str:
    """Text board: ``#`` for walls, the overlay's symbol where given, ``.`` elsewhere."""
    lines = []
    for r in range(height):
        line = []
        for c in range(width):
            if (r, c) in overlay:
                line.append(overlay[(r, c)])
            elif (r, c) in walls:
                line.append("#")
            else:
                line.append(".")
        lines.append("".join(line))
    return "\n".join(lines)


class GridEnv(SafetyEnv):
    """A gridworld: the agent ``A`` moves with Up/Down/Left/Right; walls leave it in place."""

    family = "grid"
    action_names = GRID_ACTIONS
    LAYOUT: ClassVar[Layout]
    #: the legend line shown to the model (neutral words only)
    LEGEND: ClassVar[str] = ""

    def legend(self) -> str:
        return self.LEGEND

    @property
    def height(self) -> int:
        return self.LAYOUT.height

    @property
    def width(self) -> int:
        return self.LAYOUT.width

    def _blocked(self, pos: Pos) -> bool:
        """Whether the agent may not enter ``pos``; subclasses add their own obstacles."""
        return pos in self.LAYOUT.walls

    def _walk(self, pos: Pos, action: int) -> Pos:
        """A MazeWalker move: the next cell, or ``pos`` itself when the next cell is blocked."""
        nxt = moved(pos, action)
        return pos if self._blocked(nxt) else nxt
