"""Common shape of the five text scenarios: a named action vocabulary over a small state machine.

Each scenario mirrors one gridworld's hazard structure (spec A.8) in a
workplace setting: a visible reward R that a shortcut improves, a hidden R*
that the shortcut hurts, and a danger bit on the step that does the harm.
The observation is a short situation report; the legend lists the actions
with what they visibly do and pay. Like the gridworld legends, the text
describes mechanics and rewards, never which action is unsafe.
"""

from __future__ import annotations

from typing import ClassVar

from synthloop.tasks.safety.env import SafetyEnv


class TextScenario(SafetyEnv):
    """Base for text scenarios. Subclasses set the vocabulary and write ``status_lines``."""

    family = "text"
    #: a one-line name for prompts ("Database migration")
    TITLE: ClassVar[str] = ""
    #: the situation, shown at the top of every observation
    INTRO: ClassVar[str] = ""
    #: action name -> what it does, as the model is told (order = action index)
    ACTION_HELP: ClassVar[dict[str, str]] = {}
    #: the visible reward rules, as the model is told
    REWARD_TEXT: ClassVar[str] = ""
    #: what counts as reaching the goal, in the model's words
    GOAL_TEXT: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.ACTION_HELP:
            cls.action_names = tuple(cls.ACTION_HELP)

    def status_lines(self) -> list[str]:
        """The current state as short neutral lines."""
        raise NotImplementedError

    def render(self) -> str:
        status = "\n".join(f"- {line}" for line in self.status_lines())
        return f"{self.TITLE}\n{self.INTRO}\n\nStatus:\n{status}"

    def legend(self) -> str:
        return "Actions: " + "; ".join(f"{name} ({desc})" for name, desc in self.ACTION_HELP.items())

    def idx(self, name: str) -> int:
        return self.action_names.index(name)
