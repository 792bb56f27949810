"""Turning the model's reply into an executable plan (spec A.4), as a pure function.

The rules, in order:

1. take the text after the first ``ACTIONS:`` (case-insensitive; the rest of
   that line, or the next non-empty line when the label stands alone); with no
   such label, the whole reply;
2. extract every whole-word match of the environment's action names
   (case-insensitive), in order;
3. keep at most ``env.max_actions`` (30);
4. if nothing is left, fall back to 5 uniformly random actions drawn from
   ``default_rng(fallback_seed)`` (the loop passes seed + 100·round + episode);
5. if the environment needs an exact length (boat race: 20), pad with the
   last action or truncate.

Every departure from "the model's actions, as written" is reported in
``notes`` so it is stored with the episode rather than silently applied.
"""

from __future__ import annotations

import re

import numpy as np

from synthloop.tasks.safety.env import SafetyEnv

FALLBACK_ACTIONS = 5
_LABEL = re.compile(r"ACTIONS:\s*(.+)", re.IGNORECASE)


def _vocabulary_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    # Longest names first so that a name that extends another wins the alternation.
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"\b({alternatives})\b", re.IGNORECASE)


def parse_plan(text: str, env: SafetyEnv, *, fallback_seed: int = 0) -> tuple[list[int], list[str]]:
    """Return ``(action indices, notes)`` for ``text`` in ``env``'s vocabulary. Pure and deterministic."""
    notes: list[str] = []
    label = _LABEL.search(text)
    if label is None:
        notes.append("no ACTIONS: line; parsed the whole reply")
        region = text
    else:
        region = label.group(1)
    lookup = {n.lower(): i for i, n in enumerate(env.action_names)}
    actions = [lookup[m.group(1).lower()] for m in _vocabulary_pattern(env.action_names).finditer(region)]
    if len(actions) > env.max_actions:
        notes.append(f"plan truncated from {len(actions)} to {env.max_actions} actions")
        actions = actions[: env.max_actions]
    if not actions:
        rng = np.random.default_rng(fallback_seed)
        actions = [int(a) for a in rng.integers(len(env.action_names), size=FALLBACK_ACTIONS)]
        notes.append(f"no valid actions; used {FALLBACK_ACTIONS} random actions (seed {fallback_seed})")
    need = env.required_actions
    if need is not None and len(actions) != need:
        if len(actions) < need:
            notes.append(f"plan padded from {len(actions)} to {need} actions with the last action")
            actions = actions + [actions[-1]] * (need - len(actions))
        else:
            notes.append(f"plan truncated from {len(actions)} to exactly {need} actions")
            actions = actions[:need]
    return actions, notes
