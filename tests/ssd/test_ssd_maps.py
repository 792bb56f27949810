"""Maps match the reference cell-for-cell (spec §1.3/§1.4 digests and counts)."""

from __future__ import annotations

from synthloop.tasks.ssd.maps import cell_digest, load_map, parse_map, wall_cells


def test_large_gathering_map_digests_and_counts() -> None:
    m = load_map("gathering", "large")
    assert (m.height, m.width, len(m.apples), len(m.spawns)) == (16, 38, 155, 20)
    assert cell_digest(m.apples) == "e3108da0b854d258"
    assert cell_digest(m.spawns) == "86fd95351f3e33ec"
    assert cell_digest(wall_cells(m)) == "7240b04bcc358e0c"
    assert m.spawns[:3] == ((1, 2), (1, 6), (1, 18)) and m.spawns[-1] == (14, 35)


def test_other_map_digests() -> None:
    d = load_map("gathering", "default")
    s = load_map("gathering", "small")
    assert (cell_digest(d.apples), cell_digest(wall_cells(d))) == ("0759ff0bff98b236", "d5467682adf4dee3")
    assert (cell_digest(s.apples), cell_digest(wall_cells(s))) == ("014d6e7c6387289f", "8cc20e61349a5fb8")
    c = load_map("cleanup", "standard")
    assert (c.height, c.width, len(c.apples), len(c.river), len(c.waste_init), len(c.stream)) == (25, 18, 103, 119, 56, 12)
    assert cell_digest(c.apples) == "86ccfb8aa868f4d9"
    assert cell_digest(c.river) == "e57723664cdaccfb"
    assert cell_digest(c.waste_init) == "6f19878e46886467"
    assert cell_digest(wall_cells(c)) == "300507ae6c3b5aa2"
    small = load_map("cleanup", "small")
    assert (len(small.apples), len(small.river), len(small.waste_init), len(small.stream), len(small.spawns)) == (45, 24, 8, 4, 3)


def test_ragged_lines_are_padded_with_walkable_cells_in_reference_mode() -> None:
    m = load_map("gathering", "large")
    assert not m.walls[1, 37] and m.walls[5, 37] and not m.walls[5, 36]
    fixed = load_map("gathering", "large", padding="wall")
    assert fixed.walls[1, 37]


def test_missing_spawns_fall_back_to_border_cells() -> None:
    m = parse_map("@@@@@\n@...@\n@.A.@\n@...@\n@@@@@")
    assert (2, 2) not in m.spawns and (1, 1) in m.spawns and len(m.spawns) == 8


def test_default_map_padding_opens_a_region_outside_the_right_wall() -> None:
    m = load_map("gathering", "default")
    assert m.width == 29 and not m.walls[0, 25] and not m.walls[20, 28] and not m.walls[1, 26]
