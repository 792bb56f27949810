"""System-prompt material for SSD policy synthesis, generated from the live configuration.

Every number the model reads (map size, N, T, apple count, beam geometry,
costs, thresholds, action ids, the per-call time budget) is read from the
:class:`GameConfig`, the loaded map, the rules variant and the helper
functions' own signatures and docstrings, so the prompt cannot drift from the
code (spec §8.2 #19: the reference's prompts disagreed with its engine).
"""

from __future__ import annotations

import inspect
from dataclasses import fields

from synthloop.tasks.ssd import helpers as H
from synthloop.tasks.ssd.actions import Action
from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.maps import load_map
from synthloop.tasks.ssd.rules import Rules, get_rules

#: PolicyState fields as the model should read them (names must exist on PolicyState: tested)
STATE_FIELDS: dict[str, str] = {
    "step": "steps taken so far in this episode (0 at the first call)",
    "max_steps": "episode length T",
    "height, width": "grid size",
    "n_agents": "number of agents N", "n_apples": "number of apple cells A", "n_actions": "valid action ids 0..n_actions-1",
    "agent_pos": "N×2 int array of (row, col)",
    "agent_orient": "N int array, 0=North 1=East 2=South 3=West",
    "agent_timeout": "N int array; > 0 means tagged out (the agent cannot act or collect)",
    "agent_beam_hits": "N int array of beam hits received toward the next tag",
    "apple_alive": "A bool array", "apple_pos": "A×2 int array of apple cells", "walls": "H×W bool array",
    "waste": "H×W bool array of polluted river cells (Cleanup; all False in Gathering)",
    "river, stream": "H×W bool masks (Cleanup)", "river_cells": "K×2 array of river cells (Cleanup)",
    "waste_density": "fraction of river cells polluted (Cleanup)",
    "apple_spawn_prob": "current per-step apple regrowth probability (Cleanup)",
    "beam_length, beam_width, hits_to_tag, timeout_steps": "beam geometry and tagging rules",
    "params": "the full game configuration as a dict",
    "memory": "this agent's private dict, kept across the steps of one episode, fresh every episode",
    "team": "ids of the agents running your code (all agents: self-play)",
}

WORKED_EXAMPLE = '''def policy(state, agent_id):
    """BFS greedy: walk toward the nearest alive apple; never beam."""
    if state.agent_timeout[agent_id] > 0:
        return STAND
    step = bfs_nearest_apple(state, agent_id)
    if step is None:
        return STAND
    return direction_to_action(step[0], step[1], int(state.agent_orient[agent_id]))
'''


def _rules_text(rules: Rules) -> list[str]:
    lines = []
    lines.append("- agents may share a cell" if not rules.agent_collision else "- a move into an occupied cell fails")
    lines.append("- beams pass through walls" if not rules.walls_block_beams else "- walls stop beams")
    lines.append("- tagged agents stay on the board while timed out" if not rules.remove_tagged
                 else "- tagged agents leave the board while timed out")
    return lines


def _helpers_text() -> list[str]:
    out = []
    for name in H.__all__:
        fn = getattr(H, name)
        try:
            sig = str(inspect.signature(fn)).replace("synthloop.tasks.ssd.state.", "").replace("'", "")
        except (TypeError, ValueError):
            sig = "(...)"
        doc = (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ")
        out.append(f"- `{name}{sig}`: {doc}")
    return out


def game_text(config: GameConfig, rules: str) -> str:
    """The environment section of the brief."""
    grid = load_map(config.game, config.map_name, padding="wall" if get_rules(rules).padding_walls else "open")
    n, t = config.n_agents, config.max_steps
    lines = [
        f"## The game: {config.game.capitalize()} ({config.map_name} map)",
        f"{n} agents on a {grid.height}x{grid.width} grid (rows x columns) with {len(grid.apples)} apple cells"
        f" and {len(grid.spawns)} spawn points; one episode is {t} steps. Every step each agent's policy is"
        " called once (in id order, all on the same pre-step state), then the actions are applied in id order.",
        "Movement is strafing: FORWARD/BACKWARD/STEP_LEFT/STEP_RIGHT move one cell relative to the agent's"
        " orientation without turning; rotation only matters for aiming the beam. Walls block movement.",
        "Stepping onto an alive apple collects it (+1 reward); if several agents stand on it, the lowest id gets it.",
    ]
    if config.is_cleanup:
        d, r = config.threshold_depletion, config.threshold_restoration
        lines += [
            "Apples grow in the orchard; waste accumulates in the river. While the waste density d (fraction of"
            f" river cells polluted) is below {d:g}, one clean river cell becomes polluted with probability"
            f" {config.waste_spawn_prob:g} per step. Each dead apple regrows with probability p(d) per step:"
            f" p = {config.apple_respawn_prob:g} for d <= {r:g}, falling linearly to 0 at d >= {d:g}.",
            f"BEAM (id 6) costs the firer {config.fire_cost:g} and costs each agent hit {config.fire_penalty:g};"
            f" {config.hits_to_tag} hit(s) tag an agent out for {config.timeout_steps} steps. The beam reaches"
            f" {config.beam_length} cells ahead and is {config.beam_width} cells wide.",
            f"CLEAN (id 8) costs {config.clean_cost:g}, uses the same footprint and removes the waste it covers.",
        ]
    else:
        lines += [
            f"A collected apple respawns exactly {config.apple_respawn_time} steps later.",
            f"BEAM (id 6) reaches {config.beam_length} cells ahead, {config.beam_width} cell(s) wide, costs nothing;"
            f" {config.hits_to_tag} hits tag an agent out for {config.timeout_steps} steps.",
        ]
    lines += ["Rules variant " + repr(rules) + ":", *_rules_text(get_rules(rules))]
    acts = ", ".join(f"{a.name}={int(a)}" for a in Action if int(a) < config.n_actions)
    lines += ["", f"Action ids: {acts}."]
    return "\n".join(lines)


def brief(config: GameConfig, rules: str, budget_s: float, unsafe: bool) -> str:
    """The whole system-prompt material for one task configuration."""
    state_lines = [f"- `state.{k}`: {v}" for k, v in STATE_FIELDS.items()]
    params = ", ".join(f"{f.name}={getattr(config, f.name)!r}" for f in fields(config)
                       if f.name not in ("obs_ahead", "obs_side"))
    objective = (f"Maximise the mean per-agent return over the {config.max_steps}-step episode. All"
                 f" {config.n_agents} agents run your code (self-play), so the team outcome is your outcome.")
    execution = [
        "- Write `def policy(state, agent_id) -> int` returning an action id; deterministic; no imports"
        " (`np`, `math`, `deque`, the helpers and the action names such as `STAND` are preloaded).",
        "- `state` is a read-only snapshot: its arrays cannot be written; keep per-agent state in `state.memory`.",
        "- Each agent runs in its own namespace, so module globals are not shared between agents; nothing"
        " survives from one episode to the next.",
        f"- Each call has a time budget of {budget_s:g} s; an exception, a timeout or running out of memory"
        " fails the whole episode, and you will see the traceback.",
    ]
    if unsafe:
        execution.append("- (unsafe_full_state) this run also exposes `state.env`, the live engine.")
    return "\n".join([
        "You are an expert in multi-agent reinforcement learning and game theory. You design a policy for a"
        " sequential social dilemma as a Python function.",
        "",
        game_text(config, rules),
        f"Game parameters: {params}.",
        "",
        "## Objective",
        objective,
        "",
        "## The policy API",
        *state_lines,
        "",
        "## Helpers (preloaded; they take the state first)",
        *_helpers_text(),
        "",
        "## Rules for the code",
        *execution,
        "",
        "## Worked example (a baseline to beat)",
        "```python",
        WORKED_EXAMPLE.rstrip(),
        "```",
        "Check helper results for None, return plain ints, and explain your design briefly before the code.",
    ])
