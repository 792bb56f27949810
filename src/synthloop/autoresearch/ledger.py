"""The autoresearch ledger: one SQLite file (``autoresearch.sqlite``) in the run directory.

Tables:

* ``experiments``: one row per measurement request (the baseline included),
  per abandon, and per interruption (a killed run's in-flight experiment or
  unmeasured edits, recorded on resume):
  change summary, the researcher's reason, the diff against the incumbent,
  objective with CI, the paired delta with its CI, the margin it had to beat,
  the harness's decision and why, and its cost. Per-replicate values are
  stored (``values_json``) but never leave the harness (see :meth:`visible`).
* ``refusals``: every refused action (path traversal, frozen file, tampered
  measurement, bad config, spent budget) with who asked and why.
* ``llm_calls``: spend per role (``researcher`` calls one by one; the
  ``synthesizer`` as one row per measurement, totalled from its inner runs).
* ``gate``: the final held-out re-evaluation (harness and report only).

Connections are shared by the service's threads, so every access holds a lock.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synthloop.store.db import sqlite_transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS experiments(
  id INTEGER PRIMARY KEY, t REAL NOT NULL, kind TEXT NOT NULL,  -- baseline | experiment | abandon | interrupted
  summary TEXT NOT NULL, reason TEXT NOT NULL, commit_sha TEXT, incumbent_sha TEXT, diff TEXT NOT NULL,
  status TEXT NOT NULL,                                          -- ok | failed | none
  objective_mean REAL, ci_low REAL, ci_high REAL, n INTEGER, n_failed INTEGER, values_json TEXT,
  delta_mean REAL, delta_ci_low REAL, delta_ci_high REAL, margin REAL,
  decision TEXT NOT NULL, decision_reason TEXT NOT NULL,  -- baseline | keep | discard | abandoned | interrupted
  errors TEXT NOT NULL, tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, wall_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals(
  id INTEGER PRIMARY KEY, t REAL NOT NULL, source TEXT NOT NULL, action TEXT NOT NULL, path TEXT NOT NULL,
  reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS llm_calls(
  id INTEGER PRIMARY KEY, t REAL NOT NULL, role TEXT NOT NULL, model TEXT NOT NULL, experiment INTEGER,
  calls INTEGER NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL,
  error TEXT
);
CREATE TABLE IF NOT EXISTS gate(
  id INTEGER PRIMARY KEY, t REAL NOT NULL, role TEXT NOT NULL, commit_sha TEXT NOT NULL, pool TEXT NOT NULL,
  values_json TEXT NOT NULL, mean REAL, ci_low REAL, ci_high REAL, n INTEGER NOT NULL, errors TEXT NOT NULL
);
"""

#: the ledger columns a researcher may see: aggregates over the selection pool, never per-seed or held-out
VISIBLE = ("id", "kind", "summary", "reason", "status", "objective_mean", "ci_low", "ci_high", "n", "n_failed",
           "delta_mean", "delta_ci_low", "delta_ci_high", "margin", "decision", "decision_reason", "errors",
           "tokens", "cost_usd", "wall_s", "diff")


def _num(x: Any) -> Any:
    """SQLite REAL cannot hold inf: store it as NULL-free text-safe large numbers."""
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, float) and abs(x) == float("inf"):
        return 1e308 if x > 0 else -1e308
    return x


class Ledger:
    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self.lock = threading.RLock()
        if readonly:
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.executescript(SCHEMA)
        self.conn.row_factory = sqlite3.Row

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes that must land together or not at all (a decision and its charge): one commit."""
        with self.lock, sqlite_transaction(self.conn, "BEGIN IMMEDIATE"):
            yield

    def set_meta(self, key: str, value: Any) -> None:
        with self.lock:
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self.lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def add_experiment(self, **row: Any) -> int:
        row = {k: _num(v) for k, v in row.items()}
        row.setdefault("t", time.time())
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.lock:
            cur = self.conn.execute(f"INSERT INTO experiments({cols}) VALUES({marks})", tuple(row.values()))
        return int(cur.lastrowid)  # type: ignore[arg-type]

    def experiments(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.conn.execute("SELECT * FROM experiments ORDER BY id")]

    def visible(self, diff_chars: int = 4000) -> list[dict[str, Any]]:
        """The ledger as the researcher sees it: selection-pool aggregates only (no replicate values, no gate)."""
        out = []
        for r in self.experiments():
            v = {k: r[k] for k in VISIBLE}
            v["diff"] = (v["diff"] or "")[:diff_chars]
            out.append(v)
        return out

    def refuse(self, source: str, action: str, path: str, reason: str) -> None:
        with self.lock:
            self.conn.execute("INSERT INTO refusals(t, source, action, path, reason) VALUES(?,?,?,?,?)",
                              (time.time(), source, action, path, reason))

    def refusals(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.conn.execute("SELECT * FROM refusals ORDER BY id")]

    def add_llm(self, role: str, model: str, *, calls: int = 1, input_tokens: int = 0, output_tokens: int = 0,
                cost_usd: float = 0.0, experiment: int | None = None, error: str | None = None) -> None:
        with self.lock:
            self.conn.execute(
                "INSERT INTO llm_calls(t, role, model, experiment, calls, input_tokens, output_tokens, cost_usd, error)"
                " VALUES(?,?,?,?,?,?,?,?,?)",
                (time.time(), role, model, experiment, calls, input_tokens, output_tokens, cost_usd, error))

    def spend(self) -> dict[str, dict[str, float]]:
        """Totals per role: calls, tokens, dollars."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT role, SUM(calls) c, SUM(input_tokens) i, SUM(output_tokens) o, SUM(cost_usd) d"
                " FROM llm_calls GROUP BY role").fetchall()
        return {r["role"]: {"calls": r["c"] or 0, "input_tokens": r["i"] or 0, "output_tokens": r["o"] or 0,
                            "tokens": (r["i"] or 0) + (r["o"] or 0), "cost_usd": r["d"] or 0.0} for r in rows}

    def add_gate(self, role: str, commit: str, pool: str, values: list[float | None], mean: float | None,
                 lo: float | None, hi: float | None, n: int, errors: list[str]) -> None:
        with self.lock:
            self.conn.execute(
                "INSERT INTO gate(t, role, commit_sha, pool, values_json, mean, ci_low, ci_high, n, errors)"
                " VALUES(?,?,?,?,?,?,?,?,?,?)",
                (time.time(), role, commit, pool, json.dumps(values), _num(mean), _num(lo), _num(hi), n,
                 json.dumps(errors)))

    def gate_rows(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.conn.execute("SELECT * FROM gate ORDER BY id")]
