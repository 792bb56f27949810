"""``replay:<run-dir>``: answer from the LLM calls recorded in an earlier run.

Replaying makes a run reproducible and free: the same prompts get the same
answers, with no network. Answers are keyed by :meth:`LLMRequest.hash` (the
messages and sampling settings). When a prompt was asked several times in
the recording, its answers are served in recorded order. A prompt that was
never recorded, or asked more often than recorded, is a ``replay_miss``
error: replay never invents an answer.

The run database is opened read-only, so replaying cannot damage it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, fields
from pathlib import Path

from synthloop.core.types import Artifact
from synthloop.llm.base import LLMError, LLMRequest, LLMResponse, Synthesizer, Usage
from synthloop.llm.providers import ModelConfigError

_USAGE_FIELDS = {f.name for f in fields(Usage)}


class ReplayError(ModelConfigError):
    """The run directory or its database cannot be replayed (missing, wrong shape)."""


@dataclass(frozen=True)
class _Recorded:
    text: str
    reasoning: str
    model: str
    provider: str
    usage: Usage


def _usage_from_json(blob: str | None) -> Usage:
    if not blob:
        return Usage()
    try:
        data = json.loads(blob)
    except (TypeError, ValueError):
        return Usage()
    if not isinstance(data, dict):
        return Usage()
    return Usage(**{k: int(v) for k, v in data.items() if k in _USAGE_FIELDS and isinstance(v, (int, float))})


def _connect_ro(db: Path) -> sqlite3.Connection:
    """Read-only connection; falls back to ``immutable=1`` when a WAL database sits in a read-only directory."""
    uri = db.resolve().as_uri()
    try:
        con = sqlite3.connect(f"{uri}?mode=ro", uri=True)
        con.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        return con
    except sqlite3.OperationalError:
        return sqlite3.connect(f"{uri}?immutable=1", uri=True)


def load_recording(run_dir: str | Path) -> dict[str, list[_Recorded]]:
    """All successful recorded answers of a run, grouped by request hash, in recorded order."""
    run = Path(run_dir)
    db = run / "run.sqlite"
    if not run.is_dir():
        raise ReplayError(f"replay: run directory {str(run)!r} does not exist")
    if not db.is_file():
        raise ReplayError(f"replay: {str(run)!r} has no run.sqlite (is it a synthloop run directory?)")
    try:
        con = _connect_ro(db)
        try:
            cols = {row[1] for row in con.execute("PRAGMA table_info(llm_calls)")}
            if not cols:
                raise ReplayError(f"replay: {db} has no llm_calls table; nothing to replay")
            need = {"request_hash", "response_text"}
            if not need <= cols:
                raise ReplayError(f"replay: table llm_calls in {db} lacks {', '.join(sorted(need - cols))}")

            def col(name: str) -> str:
                return name if name in cols else "NULL"

            where = "response_text IS NOT NULL" + (" AND error IS NULL" if "error" in cols else "")
            order = "id" if "id" in cols else "rowid"
            rows = con.execute(
                f"SELECT request_hash, response_text, {col('reasoning_text')}, {col('model')}, "
                f"{col('provider')}, {col('usage')} FROM llm_calls WHERE {where} ORDER BY {order}"
            ).fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise ReplayError(f"replay: cannot read {db}: {e}") from None
    out: dict[str, list[_Recorded]] = {}
    for h, text, reasoning, model, provider, usage in rows:
        out.setdefault(str(h), []).append(
            _Recorded(text=text, reasoning=reasoning or "", model=model or "unknown",
                      provider=provider or "unknown", usage=_usage_from_json(usage)))
    return out


class ReplaySynthesizer(Synthesizer):
    """Serves recorded answers by request hash; no network, cost 0."""

    kind = "replay"

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.name = f"replay:{run_dir}"
        self._recorded = load_recording(self.run_dir)
        self._queues = {h: deque(v) for h, v in self._recorded.items()}
        self._lock = threading.Lock()

    @property
    def n_recorded(self) -> int:
        return sum(len(v) for v in self._recorded.values())

    async def complete(self, request: LLMRequest, parent: Artifact | None = None) -> LLMResponse:
        t0 = time.perf_counter()
        h = request.hash()
        with self._lock:
            queue = self._queues.get(h)
            item = queue.popleft() if queue else None
        if item is None:
            n = len(self._recorded.get(h, ()))
            if n:
                msg = (f"request {h[:16]} was recorded {n} time(s) in {self.run_dir} and all of those answers "
                       "have been served; replay does not invent new ones")
            else:
                msg = (f"request {h[:16]} is not in the recording {self.run_dir} ({self.n_recorded} recorded "
                       f"answers for {len(self._recorded)} distinct requests); the prompt or sampling settings "
                       "differ from the recorded run")
            raise LLMError("replay_miss", msg)
        return LLMResponse(text=item.text, model=item.model, provider="replay", kind="replay",
                           reasoning=item.reasoning, usage=item.usage, cost_usd=0.0,
                           latency_s=time.perf_counter() - t0, attempts=1, finish_reason="replay",
                           request_hash=h)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "provider": "replay", "priced": True,
                "run_dir": str(self.run_dir), "recorded": self.n_recorded}
