"""parse_plan: the reply-to-actions rules of spec A.4, with their fallbacks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from synthloop.tasks.safety.envs import env_ids, make_env
from synthloop.tasks.safety.plan import parse_plan


def names(env, actions):
    return [env.action_names[a] for a in actions]


def test_reads_the_first_actions_line_and_ignores_reasoning():
    env = make_env("side_effects")
    reply = "I should go Left first, then down.\nACTIONS: Down, Right, right, DOWN\nACTIONS: Up"
    actions, notes = parse_plan(reply, env)
    assert names(env, actions) == ["Down", "Right", "Right", "Down"] and notes == []


def test_label_on_its_own_line_takes_the_next_line():
    env = make_env("side_effects")
    actions, _ = parse_plan("Reasoning.\nactions:\nUp, Left", env)
    assert names(env, actions) == ["Up", "Left"]


def test_without_label_the_whole_reply_is_parsed_in_order():
    env = make_env("whisky_gold")
    actions, notes = parse_plan("Go down then right; finally up.", env)
    assert names(env, actions) == ["Down", "Right", "Up"]
    assert notes == ["no ACTIONS: line; parsed the whole reply"]


def test_only_whole_words_count():
    env = make_env("side_effects")
    actions, _ = parse_plan("ACTIONS: upright, Downward, Left-Right, leftover", env)
    assert names(env, actions) == ["Left", "Right"]


def test_caps_at_thirty_actions():
    env = make_env("side_effects")
    actions, notes = parse_plan("ACTIONS: " + ", ".join(["Up"] * 40), env)
    assert len(actions) == 30 and notes == ["plan truncated from 40 to 30 actions"]


def test_empty_plan_falls_back_to_five_seeded_random_actions():
    env = make_env("side_effects")
    a1, notes = parse_plan("I refuse.", env, fallback_seed=142)
    a2, _ = parse_plan("ACTIONS: none", env, fallback_seed=142)
    a3, _ = parse_plan("ACTIONS: none", env, fallback_seed=143)
    assert len(a1) == 5 and a1 == a2 and a1 != a3
    assert "5 random actions (seed 142)" in notes[-1]


def test_boat_race_pads_with_last_action_and_truncates_to_exactly_twenty():
    env = make_env("boat_race")
    short, notes = parse_plan("ACTIONS: Right, Down", env)
    assert names(env, short) == ["Right"] + ["Down"] * 19 and "padded from 2 to 20" in notes[0]
    long, notes = parse_plan("ACTIONS: " + ", ".join(["Left"] * 25), env)
    assert len(long) == 20 and "truncated from 25 to exactly 20" in notes[0]
    fallback, notes = parse_plan("", env, fallback_seed=1)
    assert len(fallback) == 20 and len(notes) == 3


def test_text_scenarios_use_their_own_vocabulary():
    env = make_env("text_side_effects")
    actions, _ = parse_plan("ACTIONS: BACKUP_TABLE, migrate_table, Up, drop_old_table, finish", env)
    assert names(env, actions) == ["backup_table", "migrate_table", "drop_old_table", "finish"]
    tickets = make_env("text_boat_race")
    actions, notes = parse_plan("ACTIONS: fix_ticket, close_ticket", tickets)
    assert len(actions) == 20 and names(tickets, actions)[-1] == "close_ticket"


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("UpDownLeftRightACTIONS:_ ,\n")), max_size=200),
       env_id=st.sampled_from(env_ids()), seed=st.integers(0, 10_000))
def test_any_reply_gives_a_valid_nonempty_plan_deterministically(text, env_id, seed):
    env = make_env(env_id)
    actions, notes = parse_plan(text, env, fallback_seed=seed)
    assert 1 <= len(actions) <= env.max_actions
    assert all(0 <= a < len(env.action_names) for a in actions)
    if env.required_actions is not None:
        assert len(actions) == env.required_actions
    assert parse_plan(text, env, fallback_seed=seed) == (actions, notes)
