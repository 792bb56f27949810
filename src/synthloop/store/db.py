"""The run database: one SQLite file (WAL mode) per run.

Append-mostly tables journal every completed step the moment it completes,
so a crash or ``kill -9`` loses only work in flight:

* ``candidates``: every proposal, keyed by its position in the search
  (``generation``, ``slot``) so a resumed run finds what it already did;
  lineage through ``parent_id``.
* ``evaluations``: one row per (candidate, pool) with every channel,
  private values included (they are stored, never prompted).
* ``llm_calls``: full request, response, reasoning, usage, cost, latency;
  ``request_hash`` makes the run replayable offline.
* ``events``: run lifecycle (start, resume, budget stop, gate verdicts).

One connection, used from the engine's event-loop thread only.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synthloop.core.types import Evaluation

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates(
  id INTEGER PRIMARY KEY,
  generation INTEGER NOT NULL,
  slot INTEGER NOT NULL,
  parent_id INTEGER REFERENCES candidates(id),
  status TEXT NOT NULL,            -- proposed | evaluated | invalid | failed
  sha TEXT,
  language TEXT,
  content TEXT,
  path TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  origin TEXT NOT NULL DEFAULT 'synth',  -- seed | synth
  note TEXT,
  created_at REAL NOT NULL,
  UNIQUE(generation, slot)
);
CREATE TABLE IF NOT EXISTS evaluations(
  id INTEGER PRIMARY KEY,
  candidate_id INTEGER NOT NULL REFERENCES candidates(id),
  pool TEXT NOT NULL,
  repeat INTEGER NOT NULL DEFAULT 0,
  valid INTEGER NOT NULL,
  score REAL,
  metrics TEXT NOT NULL,
  diagnostics TEXT NOT NULL,
  private TEXT NOT NULL,
  channels TEXT NOT NULL,
  cases TEXT NOT NULL,
  error_kind TEXT,
  cost_s REAL NOT NULL,
  created_at REAL NOT NULL,
  UNIQUE(candidate_id, pool, repeat)
);
CREATE TABLE IF NOT EXISTS llm_calls(
  id INTEGER PRIMARY KEY,
  generation INTEGER,
  slot INTEGER,
  attempt INTEGER,
  request_hash TEXT NOT NULL,
  request TEXT NOT NULL,
  response_text TEXT,
  reasoning_text TEXT,
  model TEXT,
  provider TEXT,
  kind TEXT,
  usage TEXT,
  cost_usd REAL NOT NULL DEFAULT 0,
  latency_s REAL NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 1,
  error TEXT,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, t REAL NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS llm_calls_hash ON llm_calls(request_hash);
CREATE INDEX IF NOT EXISTS evaluations_cand ON evaluations(candidate_id);
"""


def _j(x: Any) -> str:
    return json.dumps(x, ensure_ascii=False, default=str)


@contextlib.contextmanager
def sqlite_transaction(conn: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[None]:
    """One commit for the writes inside (rolled back on any exception); nested uses join the outer one."""
    if conn.in_transaction:  # nested: the outer transaction commits
        yield
        return
    conn.execute(begin)
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class RunDB:
    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        else:
            self.conn = sqlite3.connect(self.path, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(SCHEMA)
        self.conn.row_factory = sqlite3.Row

    def close(self) -> None:
        self.conn.close()

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Group writes into one commit (one WAL append instead of one per statement)."""
        return sqlite_transaction(self.conn)

    # ---- meta & events ------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, _j(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def event(self, kind: str, **data: Any) -> None:
        self.conn.execute("INSERT INTO events(t, kind, data) VALUES(?, ?, ?)", (time.time(), kind, _j(data)))

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT t, kind, data FROM events" + (" WHERE kind=?" if kind else "") + " ORDER BY id"
        rows = self.conn.execute(q, (kind,) if kind else ()).fetchall()
        return [{"t": r["t"], "kind": r["kind"], **json.loads(r["data"])} for r in rows]

    # ---- candidates ---------------------------------------------------
    def candidate_at(self, generation: int, slot: int) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT * FROM candidates WHERE generation=? AND slot=?", (generation, slot)
        ).fetchone()

    def add_candidate(
        self, *, generation: int, slot: int, parent_id: int | None, status: str, sha: str | None,
        language: str | None, content: str | None, path: str | None, attempts: int, origin: str = "synth",
        note: str | None = None,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO candidates(generation, slot, parent_id, status, sha, language, content, path, attempts,"
            " origin, note, created_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
            (generation, slot, parent_id, status, sha, language, content, path, attempts, origin, note, time.time()),
        )
        return int(cur.lastrowid)  # type: ignore[arg-type]

    def set_status(self, cand_id: int, status: str, note: str | None = None) -> None:
        self.conn.execute("UPDATE candidates SET status=?, note=COALESCE(?, note) WHERE id=?", (status, note, cand_id))

    def candidates(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM candidates ORDER BY generation, slot").fetchall()

    # ---- evaluations --------------------------------------------------
    def add_evaluation(self, cand_id: int, ev: Evaluation, repeat: int = 0) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO evaluations(candidate_id, pool, repeat, valid, score, metrics, diagnostics,"
            " private, channels, cases, error_kind, cost_s, created_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                cand_id, ev.pool, repeat, int(ev.valid), ev.score, _j(ev.metrics), _j(ev.diagnostics),
                _j(ev.private), _j(ev.channels), _j([c.to_dict() for c in ev.cases]), ev.error_kind,
                ev.cost_s, time.time(),
            ),
        )

    def evaluations(self, cand_id: int, pool: str | None = None) -> list[Evaluation]:
        q = "SELECT * FROM evaluations WHERE candidate_id=?" + (" AND pool=?" if pool else "") + " ORDER BY repeat"
        rows = self.conn.execute(q, (cand_id, pool) if pool else (cand_id,)).fetchall()
        return [self._row_to_eval(r) for r in rows]

    @staticmethod
    def _row_to_eval(r: sqlite3.Row) -> Evaluation:
        return Evaluation.from_dict({
            "valid": bool(r["valid"]), "score": r["score"], "metrics": json.loads(r["metrics"]),
            "diagnostics": json.loads(r["diagnostics"]), "private": json.loads(r["private"]),
            "channels": json.loads(r["channels"]), "cases": json.loads(r["cases"]), "pool": r["pool"],
            "cost_s": r["cost_s"], "error_kind": r["error_kind"],
        })

    def all_evaluations(self) -> list[tuple[int, int, Evaluation]]:
        rows = self.conn.execute("SELECT * FROM evaluations ORDER BY id").fetchall()
        return [(r["candidate_id"], r["repeat"], self._row_to_eval(r)) for r in rows]

    # ---- llm calls ----------------------------------------------------
    def add_llm_call(self, *, generation: int, slot: int, attempt: int, request_hash: str,
                     request: dict[str, Any], response: Any | None, error: str | None) -> None:
        r = response
        self.conn.execute(
            "INSERT INTO llm_calls(generation, slot, attempt, request_hash, request, response_text, reasoning_text,"
            " model, provider, kind, usage, cost_usd, latency_s, attempts, error, created_at)"
            " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                generation, slot, attempt, request_hash, _j(request),
                r.text if r else None, r.reasoning if r else None, r.model if r else None,
                r.provider if r else None, r.kind if r else None, _j(r.usage.to_dict()) if r else None,
                r.cost_usd if r else 0.0, r.latency_s if r else 0.0, r.attempts if r else 1, error, time.time(),
            ),
        )

    def llm_totals(self) -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT COUNT(*) AS calls, COALESCE(SUM(cost_usd),0) AS cost, SUM(error IS NOT NULL) AS errors FROM llm_calls"
        ).fetchone()
        toks = {"input_tokens": 0, "output_tokens": 0, "reasoning_tokens": 0, "cached_input_tokens": 0}
        for (u,) in self.conn.execute("SELECT usage FROM llm_calls WHERE usage IS NOT NULL"):
            for k, v in json.loads(u).items():
                toks[k] = toks.get(k, 0) + int(v)
        return {"calls": row["calls"], "errors": row["errors"] or 0, "cost_usd": row["cost"], **toks}
