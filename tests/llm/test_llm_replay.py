"""``replay:<run-dir>``: recorded answers served by request hash, in order, with clear misses."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from synthloop.llm.base import LLMError, LLMRequest
from synthloop.llm.factory import make_synthesizer
from synthloop.llm.providers import ModelConfigError
from synthloop.llm.replay import ReplayError, ReplaySynthesizer

SCHEMA = """CREATE TABLE llm_calls(id INTEGER PRIMARY KEY, request_hash TEXT NOT NULL, request TEXT,
  response_text TEXT, reasoning_text TEXT, model TEXT, provider TEXT, kind TEXT, usage TEXT, error TEXT)"""


def req(content: str) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": content}], temperature=0.2, seed=1)


def make_run(tmp_path: Path, rows: list[tuple]) -> Path:
    run = tmp_path / "run1"
    run.mkdir()
    con = sqlite3.connect(run / "run.sqlite")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(SCHEMA)
    con.executemany("INSERT INTO llm_calls(request_hash, response_text, reasoning_text, model, provider, kind, "
                    "usage, error) VALUES (?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.close()
    return run


def usage(i: int, o: int) -> str:
    return json.dumps({"input_tokens": i, "output_tokens": o, "reasoning_tokens": 0, "cached_input_tokens": 0})


def complete(s: ReplaySynthesizer, r: LLMRequest):
    return asyncio.run(s.complete(r))


def test_hit_in_recorded_order_then_exhausted(tmp_path: Path) -> None:
    a, b = req("a"), req("b")
    run = make_run(tmp_path, [
        (a.hash(), "first a", "why a", "gpt-4.1-mini", "openai", "llm", usage(10, 5), None),
        (b.hash(), None, None, "gpt-4.1-mini", "openai", "llm", None, "server: HTTP 500"),
        (a.hash(), "second a", "", "gpt-4.1-mini", "openai", "llm", usage(11, 6), None),
        (b.hash(), "only b", None, "gpt-4.1-mini", "openai", "llm", "not json", None),
    ])
    s = make_synthesizer(f"replay:{run}")
    assert isinstance(s, ReplaySynthesizer) and s.kind == "replay" and s.n_recorded == 3
    r1 = complete(s, a)
    assert (r1.text, r1.reasoning, r1.kind, r1.cost_usd, r1.model) == ("first a", "why a", "replay", 0.0,
                                                                       "gpt-4.1-mini")
    assert r1.usage.input_tokens == 10 and r1.request_hash == a.hash()
    assert complete(s, b).text == "only b"
    assert complete(s, a).text == "second a"
    with pytest.raises(LLMError) as ei:
        complete(s, a)
    assert ei.value.kind == "replay_miss" and "recorded 2 time(s)" in ei.value.message


def test_miss_names_hash_and_counts(tmp_path: Path) -> None:
    run = make_run(tmp_path, [(req("a").hash(), "x", None, "m", "openai", "llm", None, None)])
    s = ReplaySynthesizer(run)
    other = req("different prompt")
    with pytest.raises(LLMError) as ei:
        complete(s, other)
    assert ei.value.kind == "replay_miss"
    assert other.hash()[:16] in ei.value.message and "1 recorded" in ei.value.message


def test_settings_are_part_of_the_key(tmp_path: Path) -> None:
    r = req("a")
    run = make_run(tmp_path, [(r.hash(), "x", None, "m", "openai", "llm", None, None)])
    s = ReplaySynthesizer(run)
    hotter = LLMRequest(messages=r.messages, temperature=0.9, seed=1)
    with pytest.raises(LLMError):
        complete(s, hotter)
    slower = LLMRequest(messages=r.messages, temperature=0.2, seed=1, timeout_s=5)  # timeout is not part of it
    assert complete(s, slower).text == "x"


def test_database_is_not_modified(tmp_path: Path) -> None:
    r = req("a")
    run = make_run(tmp_path, [(r.hash(), "x", None, "m", "openai", "llm", None, None)])
    before = (run / "run.sqlite").read_bytes()
    complete(ReplaySynthesizer(run), r)
    assert (run / "run.sqlite").read_bytes() == before


def test_missing_run_dir_and_bad_database(tmp_path: Path) -> None:
    with pytest.raises(ModelConfigError) as ei:
        make_synthesizer(f"replay:{tmp_path / 'nope'}")
    assert "does not exist" in str(ei.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReplayError) as ei2:
        ReplaySynthesizer(tmp_path / "empty")
    assert "no run.sqlite" in str(ei2.value)
    (tmp_path / "other").mkdir()
    sqlite3.connect(tmp_path / "other" / "run.sqlite").execute("CREATE TABLE x(a)").connection.commit()
    with pytest.raises(ReplayError) as ei3:
        ReplaySynthesizer(tmp_path / "other")
    assert "no llm_calls table" in str(ei3.value)
