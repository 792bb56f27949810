"""Prompt templates: structure of spec A.3, numbers from the live configuration."""

from __future__ import annotations

import pytest

from synthloop.tasks.safety.envs import env_ids, make_env
from synthloop.tasks.safety.gridworlds import OffSwitch
from synthloop.tasks.safety.prompts import (
    MAX_RULES,
    SPEC_HEADER,
    acting_prompt,
    count_rules,
    extract_specification,
    initial_specification,
    noise_caveat,
    reflection_prompt,
    reflection_system_prompt,
    system_prompt,
)


def test_initial_specs():
    env = make_env("side_effects")
    plain = initial_specification(env, "epo_safe")
    assert plain == f"{SPEC_HEADER}\n1. Navigate to the target efficiently."
    assert initial_specification(env, "static") == plain == initial_specification(env, "reward_only")
    cot = initial_specification(env, "cot")
    assert cot.startswith(plain) and "step by step" in cot and count_rules(cot) == 2


@pytest.mark.parametrize("env_id", env_ids())
def test_system_prompt_is_core_then_spec_and_names_the_output_format(env_id):
    env = make_env(env_id)
    spec = initial_specification(env, "epo_safe")
    sp = system_prompt(env, spec)
    assert sp.endswith("\n" + spec) and "ACTIONS:" in sp
    assert all(name in sp for name in env.action_names)
    obs, _ = env.reset(seed=0)
    up = acting_prompt(env, obs)
    assert obs in up and "ACTIONS" in up
    assert (f"exactly {env.required_actions}" in up) if env.required_actions else (str(env.max_actions) in up)


def test_cores_use_live_numbers():
    sp = system_prompt(OffSwitch(interrupt_probability=0.25), "")
    assert "25% chance" in sp and "(3,4)" in sp and "(5,6)" in sp
    assert "ends with reward 0" in system_prompt(OffSwitch(faithful=True), "")
    assert "ends with reward 0" not in sp
    boat = system_prompt(make_env("boat_race"), "")
    assert "+3 for entering" in boat and "20 steps" in boat and "clockwise" in boat
    assert "Sokoban" in system_prompt(make_env("side_effects"), "")
    generic = system_prompt(make_env("absent_supervisor"), "")
    assert "grid environment" in generic and "+50" not in generic  # the generic core describes no rewards


def test_reflection_prompt_structure_and_rule_cap():
    env = make_env("side_effects")
    p = reflection_prompt(env, "SPEC", "EPISODES", false_positive_rate=0.0, method="epo_safe")
    order = [p.index(s) for s in ("## Current Specification\nSPEC", "## Recent Episodes\nEPISODES",
                                  "## Your Task", "<specification></specification>")]
    assert order == sorted(order) and f"at most {MAX_RULES} rules" in p
    assert "at most 4 rules" in reflection_prompt(env, "S", "E", false_positive_rate=0, method="epo_safe",
                                                   max_rules=4)
    assert reflection_system_prompt(env).endswith("grid environments.")
    assert reflection_system_prompt(make_env("text_boat_race")).endswith("task environments.")


def test_noise_caveat_only_above_zero_and_only_when_warnings_are_shown():
    env = make_env("boat_race")
    assert "noisy" not in reflection_prompt(env, "S", "E", false_positive_rate=0.0, method="epo_safe")
    assert "noisy" in reflection_prompt(env, "S", "E", false_positive_rate=0.05, method="epo_safe")
    assert "noisy" in reflection_prompt(env, "S", "E", false_positive_rate=0.5, method="epo_safe_episode")
    assert noise_caveat(0.5, "reward_only") == ""


def test_extract_specification():
    reply = "thinking...\n<specification>\n1. Never push X down.\n2. Go.\n</specification>\n<specification>x"
    assert extract_specification(reply) == f"{SPEC_HEADER}\n1. Never push X down.\n2. Go."
    kept = "<SPECIFICATION>## Behavioral Specification\n- a\n</SPECIFICATION>"
    assert extract_specification(kept) == "## Behavioral Specification\n- a"
    assert extract_specification("no tags here") is None
    assert extract_specification("<specification>  </specification>") is None


def test_count_rules():
    assert count_rules("## Behavioral Specification\n1. a\n2) b\n- c\n* d\nprose line") == 4
