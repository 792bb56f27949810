"""Shared fixtures for the social-dilemma tests: tiny custom maps and an
engine factory that places agents by hand."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.engine import SSDEngine
from synthloop.tasks.ssd.maps import parse_map


def place(engine: SSDEngine, cells: list[tuple[int, int]], orients: list[int]) -> None:
    """Overwrite agent positions/orientations after reset (test set-up only)."""
    engine.agent_pos[:] = np.array(cells)
    engine.agent_orient[:] = np.array(orients)


@pytest.fixture
def make_engine() -> Callable[..., SSDEngine]:
    def factory(text: str, game: str = "gathering", n_agents: int = 2, rules: str = "reference", **overrides: object) -> SSDEngine:
        cfg = GameConfig.for_game(game, "small", n_agents=n_agents, **overrides)
        return SSDEngine(cfg, rules, 0, grid=parse_map(text))

    return factory
