"""The EPO-Safe experiential loop (spec A.2): rounds × K episodes, then a reflection that rewrites σ.

Per episode, one stateless call: the system prompt is the environment's
fixed core plus the current specification σ, the user prompt is the
initial observation; the reply must hold a complete plan, which
:func:`~synthloop.tasks.safety.plan.parse_plan` turns into actions and
:func:`~synthloop.tasks.safety.episode.run_episode` executes open loop.
After the K episodes, methods that reflect send the round's feedback (built
by :mod:`synthloop.tasks.safety.feedback`, so R* cannot reach it) to the
reflector and replace σ with the ``<specification>`` block of the reply
(consolidation is plain replacement, as in the reference; no tags, no change).

Seeds follow the reference: episode ``e`` of round ``r`` uses seed + 100·r + e
for the environment (interruption and supervisor draws, whisky noise) and
the random fallback plan; the false-positive generator is seed + 7777,
shared by the whole run. The loop is written against
:class:`synthloop.llm.base.Synthesizer` so the engine's providers, replay
and scripted test synthesizers all plug in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from synthloop.llm.base import LLMError, LLMRequest, Synthesizer
from synthloop.tasks.safety.env import SafetyEnv
from synthloop.tasks.safety.envs import make_env
from synthloop.tasks.safety.episode import EpisodeResult, run_episode
from synthloop.tasks.safety.feedback import build_feedback
from synthloop.tasks.safety.methods import get_method
from synthloop.tasks.safety.metrics import RoundMetrics, round_metrics
from synthloop.tasks.safety.noise import NoiseModel
from synthloop.tasks.safety.plan import parse_plan
from synthloop.tasks.safety.prompts import (
    MAX_RULES,
    acting_prompt,
    count_rules,
    extract_specification,
    initial_specification,
    reflection_prompt,
    reflection_system_prompt,
    system_prompt,
)

#: how far apart the seeds of consecutive rounds are (the reference's 100·round + episode)
ROUND_SEED_STRIDE = 100


class LoopConfig(BaseModel):
    """One run's settings. Defaults: K = 5 and 3 rounds (the reported protocol, spec A.2), seed 42."""

    model_config = ConfigDict(extra="forbid")

    env_id: str
    method: str = "epo_safe"
    rounds: int = Field(3, ge=1)
    episodes: int = Field(5, ge=1, lt=ROUND_SEED_STRIDE)
    false_positive_rate: float = Field(0.0, ge=0.0, le=1.0)
    seed: int = 42
    faithful: bool = False
    max_rules: int = Field(MAX_RULES, ge=1)
    temperature: float | None = None
    max_tokens: int = 4096
    #: pause between calls (the reference slept 1.5 s); providers already rate-limit, so 0 by default
    pace_s: float = Field(0.0, ge=0.0)


@dataclass
class EpisodeRecord:
    """One episode with the exchange that produced its plan."""

    round: int
    index: int
    seed: int
    messages: list[dict[str, str]]
    reply: str
    result: EpisodeResult
    error: str | None = None

    def to_dict(self, include_private: bool = False) -> dict[str, Any]:
        return {"round": self.round, "index": self.index, "seed": self.seed, "messages": self.messages,
                "reply": self.reply, "error": self.error, "result": self.result.to_dict(include_private)}


@dataclass
class RoundRecord:
    """One round: the σ its episodes used, their results, metrics and the reflection that followed."""

    round: int
    specification: str
    episodes: list[EpisodeRecord]
    metrics: RoundMetrics
    reflection_messages: list[dict[str, str]] | None = None
    reflection_reply: str | None = None
    reflection_error: str | None = None
    next_specification: str | None = None
    rule_count: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self, include_private: bool = False) -> dict[str, Any]:
        return {
            "round": self.round, "specification": self.specification,
            "metrics": self.metrics.to_dict(), "episodes": [e.to_dict(include_private) for e in self.episodes],
            "reflection_messages": self.reflection_messages, "reflection_reply": self.reflection_reply,
            "reflection_error": self.reflection_error, "next_specification": self.next_specification,
            "rule_count": self.rule_count, "notes": list(self.notes),
        }


@dataclass
class LoopResult:
    config: LoopConfig
    variant: dict[str, Any]
    rounds: list[RoundRecord]
    final_specification: str

    def to_dict(self, include_private: bool = False) -> dict[str, Any]:
        return {"config": self.config.model_dump(), "variant": self.variant,
                "final_specification": self.final_specification,
                "rounds": [r.to_dict(include_private) for r in self.rounds]}


RoundHook = Callable[[RoundRecord], Awaitable[None] | None]


@dataclass(frozen=True)
class CallSite:
    """Where a model call sits in the loop, so a caller can give every call a stable address.

    ``act``: the plan of episode ``episode`` of round ``round``; ``reflect``: the
    reflection after round ``round``; ``heldout``: a held-out episode of the
    specification that was in force in round ``round`` (``synthloop`` gate).
    """

    kind: Literal["act", "reflect", "heldout"]
    round: int
    episode: int | None = None


#: one stateless call: (where, messages) -> (reply text, error kind or None)
Asker = Callable[[CallSite, list[dict[str, str]]], Awaitable[tuple[str, str | None]]]


def synthesizer_asker(synth: Synthesizer, cfg: LoopConfig) -> Asker:
    """An :data:`Asker` over a bare synthesizer: an :class:`LLMError` becomes an empty reply plus its kind."""

    async def ask(site: CallSite, messages: list[dict[str, str]]) -> tuple[str, str | None]:
        try:
            resp = await synth.complete(
                LLMRequest(messages=messages, temperature=cfg.temperature, max_tokens=cfg.max_tokens), parent=None)
        except LLMError as e:
            return "", e.kind
        finally:
            if cfg.pace_s:
                await asyncio.sleep(cfg.pace_s)
        return resp.text, None

    return ask


def episode_seed(seed: int, round_index: int, episode: int) -> int:
    """The reference's per-episode seed: seed + 100·round + episode."""
    return seed + ROUND_SEED_STRIDE * round_index + episode


def acting_messages(env: SafetyEnv, spec: str, observation: str) -> list[dict[str, str]]:
    """The acting call: the environment's fixed core plus σ as system prompt, the observation as user prompt."""
    return [{"role": "system", "content": system_prompt(env, spec)},
            {"role": "user", "content": acting_prompt(env, observation)}]


async def play_episode(env: SafetyEnv, spec: str, *, site: CallSite, seed: int, noise: NoiseModel,
                       ask: Asker) -> EpisodeRecord:
    """One open-loop episode: show the initial observation, ask for a plan, parse it, execute it."""
    shown, _ = env.reset(seed=seed)
    messages = acting_messages(env, spec, shown)
    reply, error = await ask(site, messages)
    actions, notes = parse_plan(reply, env, fallback_seed=seed)
    if error:
        notes = [f"synthesizer error: {error}", *notes]
    result = run_episode(env, actions, seed=seed, noise=noise, observation=shown, notes=notes)
    return EpisodeRecord(round=site.round, index=site.episode or 0, seed=seed, messages=messages, reply=reply,
                         result=result, error=error)


def reflection_messages(env: SafetyEnv, spec: str, feedback: str, config: LoopConfig) -> list[dict[str, str]]:
    """The reflection call (spec A.3-6); ``feedback`` comes from :func:`build_feedback`, so it holds no R*."""
    return [
        {"role": "system", "content": reflection_system_prompt(env)},
        {"role": "user", "content": reflection_prompt(env, spec, feedback,
                                                      false_positive_rate=config.false_positive_rate,
                                                      method=config.method, max_rules=config.max_rules)},
    ]


def apply_reflection(record: RoundRecord, reply: str, spec: str, max_rules: int) -> str:
    """The specification after a reflection reply: its ``<specification>`` block, or ``spec`` unchanged."""
    new_spec = extract_specification(reply)
    if new_spec is None:
        record.notes.append("no <specification> block in the reflection; specification kept")
        return spec
    record.rule_count = count_rules(new_spec)
    if record.rule_count > max_rules:
        record.notes.append(f"specification has {record.rule_count} rules (cap {max_rules})")
    return new_spec


def loop_variant(env: SafetyEnv, config: LoopConfig) -> dict[str, Any]:
    """Which behaviour ran: the environment's quirk switch plus the feedback quirk (spec A.7, issue item 1)."""
    method = get_method(config.method)
    return {**env.variant(),
            "episode_feedback_leaks_step_indices": config.faithful and method.feedback == "episode"}


async def run_loop(config: LoopConfig, synth: Synthesizer | None = None, *, on_round: RoundHook | None = None,
                   ask: Asker | None = None) -> LoopResult:
    """Run ``config.rounds`` rounds of ``config.episodes`` episodes; reflect after each round if the method does.

    Calls go through ``ask`` when given (the framework task routes them through
    the engine, which records, budgets and replays them), else straight to
    ``synth``. Exceptions other than :class:`LLMError` (a spent budget) propagate.
    """
    if ask is None:
        if synth is None:
            raise ValueError("run_loop needs a synthesizer or an asker")
        ask = synthesizer_asker(synth, config)
    method = get_method(config.method)
    env = make_env(config.env_id, faithful=config.faithful, stream_seed=config.seed)
    noise = NoiseModel(config.false_positive_rate, config.seed)
    spec = initial_specification(env, config.method)
    rounds: list[RoundRecord] = []
    for r in range(config.rounds):
        records = [
            await play_episode(env, spec, site=CallSite("act", r, e), seed=episode_seed(config.seed, r, e),
                               noise=noise, ask=ask)
            for e in range(config.episodes)
        ]
        record = RoundRecord(round=r, specification=spec, episodes=records,
                             metrics=round_metrics([x.result for x in records], spec))
        feedback = build_feedback(config.method, [x.result for x in records], faithful=config.faithful)
        if method.reflects and feedback is not None:
            messages = reflection_messages(env, spec, feedback, config)
            reply, error = await ask(CallSite("reflect", r), messages)
            record.reflection_messages, record.reflection_reply, record.reflection_error = messages, reply, error
            spec = apply_reflection(record, reply, spec, config.max_rules)
        record.next_specification = spec
        rounds.append(record)
        if on_round is not None:
            maybe = on_round(record)
            if maybe is not None:
                await maybe
    return LoopResult(config=config, variant=loop_variant(env, config), rounds=rounds, final_specification=spec)
