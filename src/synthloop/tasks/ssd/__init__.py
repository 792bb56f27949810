"""Sequential social dilemmas: Gathering and Cleanup (spec: ssd_policy_synthesis.md).

Public API:

* :func:`evaluate_policy`: evaluate a policy over seeds (parallel), returning
  ``{"episodes": [...], "mean": {...}}``.
* :class:`SSDEnv`: Gymnasium/PettingZoo-style multi-agent environment.
* :class:`SSDEngine`, :class:`GameConfig`, :func:`get_rules`: the engine,
  its parameters and rule variants (``reference`` by default).
* :class:`PolicyState` and :mod:`~synthloop.tasks.ssd.helpers`: what a policy
  ``policy(state, agent_id) -> int`` sees and may call.
* :func:`compute_metrics`, :func:`run_episode`, builtin policies, Q-learning
  (:mod:`~synthloop.tasks.ssd.qlearning`) and :func:`render_episode`.
"""

from __future__ import annotations

from typing import Any

from synthloop.tasks.ssd.actions import Action, Orientation
from synthloop.tasks.ssd.config import GameConfig
from synthloop.tasks.ssd.engine import SSDEngine
from synthloop.tasks.ssd.evaluate import (
    PROTOCOLS,
    SSDInputError,
    evaluate_policy,
    parse_seeds,
    resolve_policy,
)
from synthloop.tasks.ssd.metrics import SocialMetrics, compute_metrics
from synthloop.tasks.ssd.policies import BUILTIN_POLICIES, builtin_policy
from synthloop.tasks.ssd.rules import RULE_NAMES, Rules, get_rules
from synthloop.tasks.ssd.runner import EpisodeResult, run_episode
from synthloop.tasks.ssd.state import PolicyState

__all__ = [
    "Action", "BUILTIN_POLICIES", "EpisodeResult", "GameConfig", "Orientation", "PROTOCOLS", "PolicyState",
    "RULE_NAMES", "Rules", "SSDEngine", "SSDEnv", "SSDInputError", "SocialMetrics", "builtin_policy",
    "compute_metrics", "evaluate_policy", "get_rules", "parse_seeds", "render_episode", "resolve_policy",
    "run_episode",
]


def __getattr__(name: str) -> Any:
    # Lazy: rendering pulls in Pillow; the env module is light but optional.
    if name == "render_episode":
        from synthloop.tasks.ssd.render import render_episode

        return render_episode
    if name == "SSDEnv":
        from synthloop.tasks.ssd.env import SSDEnv

        return SSDEnv
    raise AttributeError(name)
