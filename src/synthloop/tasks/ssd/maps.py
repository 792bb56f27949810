"""ASCII maps of the reference system and their parser.

The map texts are data copied cell-for-cell from the reference so that reset
positions, apple indices and hence every golden value line up. The parser
reproduces the reference's one quirk that changes geometry: lines shorter
than the longest are right-padded with *walkable* spaces (spec §1.2, §8.2
#3). ``padding="wall"`` is the documented fix used by the rule variant
``padding-walls``.

Characters: ``@`` wall, ``A`` apple cell, ``P`` preferred spawn, ``.``/space
empty; Cleanup adds ``H`` (river, starts polluted), ``R`` (river, starts
clean) and ``S`` (stream: walkable, never polluted).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

GATHERING_MAP_LARGE = """\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@.P...P......A....P.AAAAA....P..A.P.@
@..P.....A.P.AA....P....AAA....A..A.@
@.....A.AAA..AAA....A....A.AA.AAAA..@
@.A..AAA.A....A..A.AAA..A..A...A.A..@
@AAA..A.A....A..AAA.A..AAA........A.P@
@.A.A..AAA..AAA..A.A....A.AA...AA.AA@
@..A.A..AAA....A.A..AAA....AAA..A...@
@...AAA..A......AAA..A....AAAA......@
@.P..A.......A..A.AAA....A..A......P@
@A..AAA..A..A..AAA.A....AAAA.....P..@
@....A.A...AAA..A.A......A.AA...A.P.@
@.....AAA...A.A..AAA......AA...AAA.P@
@.A....A.....AAA..A..P..........A...@
@.......P.....A.........P..P.P.....P@
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@"""

GATHERING_MAP_DEFAULT = """\
@@@@@@@@@@@@@@@@@@@@@@@@@
@P.........AAA.........@
@..........AAA.........@
@..........AAA..........@
@..........AAA..........@
@..........AAA..........@
@..........AAA..........@
@..........AAA..........@
@..........AAA..........@
@..........AAA..........@
@...........................@
@...........................@
@..........AAA..........@
@..........AAA..........@
@..........AAA..........@
@..........AAA..........@
@..........AAA..........@
@..........AAA..........@
@..........AAA..........@
@..........AAA.........P@
@@@@@@@@@@@@@@@@@@@@@@@@@"""

GATHERING_MAP_SMALL = """\
@@@@@@@@@@@@@@@@@@
@P.....A.A.....P@
@......A.A......@
@......A.A......@
@......A.A......@
@......A.A......@
@......A.A......@
@......A.A......@
@................@
@@@@@@@@@@@@@@@@@@"""

COMMONS_MAP = """\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@............................@
@...AAAA.......AAAA..........@
@...AAAA.......AAAA..........@
@...AAAA.......AAAA..........@
@...AAAA.......AAAA..........@
@............................@
@............................@
@........AAAAAA..............@
@........AAAAAA..............@
@........AAAAAA..............@
@........AAAAAA..............@
@............................@
@............................@
@...AAAA.......AAAA..........@
@...AAAA.......AAAA..........@
@...AAAA.......AAAA..........@
@...AAAA.......AAAA..........@
@............................@
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@"""

CLEANUP_MAP_STANDARD = """\
@@@@@@@@@@@@@@@@@@
@RRRRRR     AAAAA@
@HHHHHH      AAAA@
@RRRRRR     AAAAA@
@RRRRR  P    AAAA@
@RRRRR    P AAAAA@
@HHHHH       AAAA@
@RRRRR      AAAAA@
@HHHHHHSSSSSSAAAA@
@HHHHHHSSSSSSAAAA@
@RRRRR   P P AAAA@
@HHHHH   P  AAAAA@
@RRRRRR    P AAAA@
@HHHHHH P   AAAAA@
@RRRRR       AAAA@
@HHHH    P  AAAAA@
@RRRRR       AAAA@
@HHHHH  P P AAAAA@
@RRRRR       AAAA@
@HHHH       AAAAA@
@RRRRR       AAAA@
@HHHHH      AAAAA@
@RRRRR       AAAA@
@HHHH       AAAAA@
@@@@@@@@@@@@@@@@@@"""

CLEANUP_MAP_SMALL = """\
@@@@@@@@@@@@@
@RRR   AAAAA@
@HHH   AAAAA@
@RRRSS AAAAA@
@RR  P AAAAA@
@HH  P AAAAA@
@RR  P AAAAA@
@RRRSS AAAAA@
@HHH   AAAAA@
@RRR   AAAAA@
@@@@@@@@@@@@@"""

#: Map names per game. ``COMMONS_MAP`` is kept as data only: it needs the
#: density respawn mode, which the paper never used and this engine omits. Cleanup has no large map; the reference silently
#: mapped ``large`` to the standard one, which we refuse (spec §8.2 #18).
MAP_TEXTS: dict[str, dict[str, str]] = {
    "gathering": {
        "large": GATHERING_MAP_LARGE,
        "default": GATHERING_MAP_DEFAULT,
        "small": GATHERING_MAP_SMALL,
    },
    "cleanup": {"standard": CLEANUP_MAP_STANDARD, "small": CLEANUP_MAP_SMALL},
}
DEFAULT_MAP: dict[str, str] = {"gathering": "large", "cleanup": "standard"}


@dataclass(frozen=True)
class GridMap:
    """A parsed map. Cell lists are in row-major order of appearance, which
    is the reference's index order for apples, spawns and river cells."""

    name: str
    walls: np.ndarray  # (H, W) bool
    apples: np.ndarray  # (A, 2) int64
    spawns: tuple[tuple[int, int], ...]
    river: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))  # H + R cells
    waste_init: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))  # H cells
    stream: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))

    @property
    def height(self) -> int:
        return int(self.walls.shape[0])

    @property
    def width(self) -> int:
        return int(self.walls.shape[1])

    def open_cells(self, exclude_river: bool) -> list[tuple[int, int]]:
        """Cells a surplus agent may spawn on (reference reset rule)."""
        blocked = self.walls.copy()
        for arr in (self.apples, self.river, self.stream) if exclude_river else (self.apples,):
            if len(arr):
                blocked[arr[:, 0], arr[:, 1]] = True
        rows, cols = np.nonzero(~blocked)
        return list(zip(rows.tolist(), cols.tolist(), strict=False))


def _cells(cells: list[tuple[int, int]]) -> np.ndarray:
    arr = np.array(cells, dtype=np.int64).reshape(-1, 2)
    arr.setflags(write=False)
    return arr


def parse_map(text: str, name: str = "custom", *, padding: str = "open") -> GridMap:
    """Parse an ASCII map.

    ``padding="open"`` reproduces the reference (ragged lines padded with
    walkable cells); ``padding="wall"`` turns padding into walls.
    """
    if padding not in ("open", "wall"):
        raise ValueError(f"padding must be 'open' or 'wall', not {padding!r}")
    lines = text.strip().splitlines()
    height = len(lines)
    width = max(len(line) for line in lines)
    walls = np.zeros((height, width), dtype=bool)
    apples: list[tuple[int, int]] = []
    spawns: list[tuple[int, int]] = []
    river: list[tuple[int, int]] = []
    waste: list[tuple[int, int]] = []
    stream: list[tuple[int, int]] = []
    for r, line in enumerate(lines):
        pad = "@" if padding == "wall" else " "
        for c, ch in enumerate(line.ljust(width, pad)):
            if ch == "@":
                walls[r, c] = True
            elif ch == "A":
                apples.append((r, c))
            elif ch == "P":
                spawns.append((r, c))
            elif ch in "HR":
                river.append((r, c))
                if ch == "H":
                    waste.append((r, c))
            elif ch == "S":
                stream.append((r, c))
    if not spawns:
        apple_set = set(apples)
        for r in range(height):
            for c in range(width):
                if walls[r, c] or (r, c) in apple_set:
                    continue
                if r <= 1 or r >= height - 2 or c <= 1 or c >= width - 2:
                    spawns.append((r, c))
    walls.setflags(write=False)
    return GridMap(
        name=name,
        walls=walls,
        apples=_cells(apples),
        spawns=tuple(spawns),
        river=_cells(river),
        waste_init=_cells(waste),
        stream=_cells(stream),
    )


def map_names(game: str) -> list[str]:
    """Valid map names for ``game``."""
    return list(MAP_TEXTS[game])


def load_map(game: str, name: str | None = None, *, padding: str = "open") -> GridMap:
    """Load a named built-in map; raises ``KeyError`` naming the valid choices."""
    name = name or DEFAULT_MAP[game]
    texts = MAP_TEXTS[game]
    if name not in texts:
        raise KeyError(f"unknown {game} map {name!r}; valid maps: {', '.join(texts)}")
    return parse_map(texts[name], name, padding=padding)


def cell_digest(cells: np.ndarray | list[tuple[int, int]]) -> str:
    """First 16 hex chars of SHA-256 over the compact JSON of the sorted
    ``[row, col]`` list: the verification digest used in spec §1.3/§1.4."""
    pairs = sorted([int(r), int(c)] for r, c in np.asarray(cells).reshape(-1, 2))
    blob = json.dumps(pairs, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def wall_cells(grid: GridMap) -> np.ndarray:
    """Wall coordinates as an (K, 2) array (for digests and rendering)."""
    return np.argwhere(grid.walls)
