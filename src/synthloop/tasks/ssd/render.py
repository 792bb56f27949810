"""Animated GIF (and optional PNG frames) of an episode, god's-eye view.

Frames use the observation palette (spec §1.6) with beams painted on the
step they were fired, so tagging and cleaning are visible. Pillow writes the
GIF; frames are upscaled by ``cell_size`` with nearest-neighbour blocks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.engine import SSDEngine
from synthloop.tasks.ssd.evaluate import population, resolve_policy
from synthloop.tasks.ssd.observations import god_view
from synthloop.tasks.ssd.rules import get_rules
from synthloop.tasks.ssd.runner import run_episode


def render_episode(
    game: str,
    policy: Any,
    *,
    seed: int = 0,
    out: str | Path = "episode.gif",
    frames_dir: str | Path | None = None,
    agents: int = 10,
    map_name: str | None = None,
    steps: int = 200,
    rules: str = "reference",
    protocol: str = "self-play",
    cell_size: int = 12,
    fps: int = 10,
) -> dict[str, Any]:
    """Play one episode and write it as a GIF; returns paths and metrics."""
    config = GameConfig.for_game(game, map_name, n_agents=agents, max_steps=steps)
    engine = SSDEngine(config, get_rules(rules))
    frames: list[np.ndarray] = []

    def grab(env: SSDEngine, _actions: np.ndarray) -> None:
        frames.append(god_view(env, cell_size))

    pol = resolve_policy(policy)
    assert pol is not None
    engine.reset(seed)
    first = god_view(engine, cell_size)
    result = run_episode(config, population(pol, protocol, agents), seed, rules, on_step=grab, engine=engine)
    frames.insert(0, first)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(out, save_all=True, append_images=images[1:], duration=max(1, 1000 // fps), loop=0)
    written: list[str] = []
    if frames_dir is not None:
        d = Path(frames_dir)
        d.mkdir(parents=True, exist_ok=True)
        for t, img in enumerate(images):
            p = d / f"frame_{t:05d}.png"
            img.save(p)
            written.append(str(p))
    return {"gif": str(out), "frames": len(frames), "png_frames": written, "episode": result.to_dict()}
