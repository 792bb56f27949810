"""Budget: cost, LLM calls and wall time. A spent budget stops the search cleanly (the report is still written)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


class BudgetExhausted(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Budget:
    max_cost_usd: float | None = None
    max_llm_calls: int | None = None
    max_wall_s: float | None = None
    cost_usd: float = 0.0
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    wall_before_s: float = 0.0  # wall time spent in earlier sessions of a resumed run
    started: float = field(default_factory=time.monotonic)

    @property
    def wall_s(self) -> float:
        return self.wall_before_s + time.monotonic() - self.started

    def check(self) -> None:
        """Raise BudgetExhausted if a limit is reached (called before each LLM call)."""
        if self.max_cost_usd is not None and self.cost_usd >= self.max_cost_usd:
            raise BudgetExhausted(f"cost budget spent: ${self.cost_usd:.4f} of ${self.max_cost_usd:.4f}")
        if self.max_llm_calls is not None and self.llm_calls >= self.max_llm_calls:
            raise BudgetExhausted(f"LLM call budget spent: {self.llm_calls} of {self.max_llm_calls}")
        if self.max_wall_s is not None and self.wall_s >= self.max_wall_s:
            raise BudgetExhausted(f"wall-time budget spent: {self.wall_s:.1f} s of {self.max_wall_s:.1f} s")

    def charge(self, cost_usd: float, input_tokens: int, output_tokens: int) -> None:
        self.llm_calls += 1
        self.cost_usd += cost_usd
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
