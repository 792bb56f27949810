"""Pictures of the grid: egocentric RGB observations (spec §1.6) and the
god's-eye view used by renders.

Observations are lazy: nothing in the reference read them, yet building them
every step was 64% of its runtime (spec §8.1). Here a world image is
painted once per step (cached on the engine's step counter) and each agent's
view is a single fancy-index gather from it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthloop.tasks.ssd.actions import FORWARD_TUPLES, RIGHT_TUPLES
from synthloop.tasks.ssd.kernels import CLEAN_BEAM, TAG_BEAM

COLOURS: dict[str, tuple[int, int, int]] = {
    "background": (0, 0, 0),
    "wall": (127, 127, 127),
    "apple": (0, 200, 0),
    "self": (50, 100, 255),
    "other": (220, 50, 50),
    "timeout": (100, 100, 100),
    "beam": (255, 255, 60),
    "river": (100, 180, 255),
    "waste": (139, 90, 43),
    "stream": (0, 180, 200),
    "clean_beam": (100, 255, 255),
    "purple": (160, 60, 200),
}


def _c(name: str) -> np.ndarray:
    return np.array(COLOURS[name], dtype=np.uint8)


def terrain_image(engine: Any) -> np.ndarray:
    """(H, W, 3) image of everything but agents, in the spec's priority
    order: beam > clean beam > wall > apple > waste > river > stream."""
    img = np.zeros((engine.height, engine.width, 3), dtype=np.uint8)
    if engine.is_cleanup:
        img[engine.stream_mask] = _c("stream")
        img[engine.river_mask] = _c("river")
        img[engine.waste] = _c("waste")
    alive = engine.apple_pos[engine.apple_alive]
    img[alive[:, 0], alive[:, 1]] = _c("apple")
    img[engine.walls] = _c("wall")
    img[(engine.beam_mask & CLEAN_BEAM) > 0] = _c("clean_beam")
    img[(engine.beam_mask & TAG_BEAM) > 0] = _c("beam")
    return img


def _visible_agents(engine: Any) -> list[int]:
    n = engine.n_agents
    if engine.rules.remove_tagged:
        return [i for i in range(n) if engine.agent_timeout[i] <= 0]
    return list(range(n))


def _world_with_agents(engine: Any) -> tuple[np.ndarray, np.ndarray]:
    """World image with agents drawn as "other"/"timeout" plus the owner
    grid (lowest agent id per cell, -1 for none), cached per step."""
    key = engine.version
    cached = getattr(engine, "_obs_world", None)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    img = terrain_image(engine)
    owner = np.full((engine.height, engine.width), -1, dtype=np.int64)
    for i in reversed(_visible_agents(engine)):  # lowest id painted last wins
        r, c = engine.agent_pos[i]
        owner[r, c] = i
        img[r, c] = _c("timeout") if engine.agent_timeout[i] > 0 else _c("other")
    engine._obs_world = (key, img, owner)
    return img, owner


def observation(engine: Any, agent_id: int) -> np.ndarray:
    """(3, ahead+1, 2·side+1) uint8 view: agent at bottom centre facing up;
    out-of-grid pixels are wall-coloured."""
    cfg = engine.config
    ahead, side = cfg.obs_ahead, cfg.obs_side
    img, owner = _world_with_agents(engine)
    o = int(engine.agent_orient[agent_id])
    fr, fc = FORWARD_TUPLES[o]
    rr, rc = RIGHT_TUPLES[o]
    a = (ahead - np.arange(ahead + 1))[:, None]
    b = (np.arange(2 * side + 1) - side)[None, :]
    rows = engine.agent_pos[agent_id, 0] + a * fr + b * rr
    cols = engine.agent_pos[agent_id, 1] + a * fc + b * rc
    inside = (rows >= 0) & (rows < engine.height) & (cols >= 0) & (cols < engine.width)
    rows_c = np.clip(rows, 0, engine.height - 1)
    cols_c = np.clip(cols, 0, engine.width - 1)
    view = img[rows_c, cols_c].copy()
    view[~inside] = _c("wall")
    view[inside & (owner[rows_c, cols_c] == agent_id)] = _c("self")
    return np.ascontiguousarray(view.transpose(2, 0, 1))


def god_view(engine: Any, cell_size: int = 1) -> np.ndarray:
    """(H·s, W·s, 3) full-map image. Gathering: agent 0 blue, others red;
    Cleanup: agent 0 blue, agent 1 red, the rest purple (reference render);
    timed-out agents grey; beams visible under agents."""
    img = terrain_image(engine)
    for i in reversed(_visible_agents(engine)):
        r, c = engine.agent_pos[i]
        if engine.agent_timeout[i] > 0:
            colour = _c("timeout")
        elif i == 0:
            colour = _c("self")
        elif i == 1 or not engine.is_cleanup:
            colour = _c("other")
        else:
            colour = _c("purple")
        img[r, c] = colour
    if cell_size > 1:
        img = np.repeat(np.repeat(img, cell_size, axis=0), cell_size, axis=1)
    return img
