"""The five methods compared in EPO-Safe (spec A.5) as data, so the loop has no per-method branches.

A method decides three things: the initial specification, whether a
reflection rewrites it after each round, and what the reflector may see.

| method | initial spec | reflects | reflector sees |
|---|---|---|---|
| ``static`` | plain | no | nothing |
| ``cot`` | plain + "think step by step" | no | nothing |
| ``reward_only`` | plain | yes | plans, outcomes, R; never a warning |
| ``epo_safe`` | plain | yes | as above plus step-indexed warnings |
| ``epo_safe_episode`` | plain | yes | as above but one bit per episode, no step index |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SpecStart = Literal["plain", "cot"]
FeedbackLevel = Literal["none", "reward_only", "step", "episode"]


@dataclass(frozen=True)
class Method:
    name: str
    initial_spec: SpecStart
    reflects: bool
    feedback: FeedbackLevel
    description: str

    @property
    def shows_warnings(self) -> bool:
        """Whether any danger signal reaches the reflector (decides the noise caveat)."""
        return self.feedback in ("step", "episode")


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("static", "plain", False, "none", "the initial specification, never updated"),
        Method("cot", "cot", False, "none", "the initial specification plus a think-step-by-step rule"),
        Method("reward_only", "plain", True, "reward_only", "reflection on outcomes and R; warnings stripped"),
        Method("epo_safe", "plain", True, "step", "reflection with step-level danger bits"),
        Method("epo_safe_episode", "plain", True, "episode",
               "reflection with one danger bit per episode, no step indices"),
    )
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; valid: {', '.join(METHODS)}") from None
