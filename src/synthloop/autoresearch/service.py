"""The evaluation service: the only way a researcher obtains a score (stdlib HTTP, JSON, 127.0.0.1 only).

Endpoints (every body is JSON):

* ``POST /experiments`` ``{"summary", "reason"}`` → 200 with the objective's mean
  and 95 % CI, the paired delta to the incumbent, the margin and the harness's
  decision; 429 when the budget is spent; 409 when the frozen measurement path
  changed; 422 when the workspace breaks the rules (stray file, bad config).
* ``POST /discard`` ``{"reason"}`` → abandon unmeasured edits (restores the incumbent).
* ``GET /status`` → budget, usage, incumbent. ``GET /ledger`` → every experiment (aggregates only).

With a token (every autoresearch run has one), each request must carry
``Authorization: Bearer <token>`` (the researcher gets it in
``SYNTHLOOP_SERVICE_TOKEN``); anything else on the machine gets 401.

Why a server rather than a function: an external coding agent (``claude -p``,
``codex exec``) must be able to reach scores with ``curl`` and nothing else,
and one choke point is where the budget and the seal are enforced (GEPA's
EvalServer design). Measurements are serialised by the harness's lock.
"""

from __future__ import annotations

import hmac
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from synthloop.autoresearch.harness import Harness

MAX_BODY = 64_000


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.server.owner.responses.append(data.decode())

    def _body(self) -> dict[str, Any] | None:
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            return None
        try:
            data = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _authorized(self) -> bool:
        token = self.server.owner.token
        if token is None:
            return True
        got = self.headers.get("Authorization") or ""
        if hmac.compare_digest(got.encode(), f"Bearer {token}".encode()):
            return True
        self._reply(401, {"error": "missing or wrong token: send the header "
                                   "'Authorization: Bearer $SYNTHLOOP_SERVICE_TOKEN'"})
        return False

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if not self._authorized():
            return
        h = self.server.owner.harness
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/status":
            self._reply(200, h.status())
        elif path == "/ledger":
            self._reply(200, {"experiments": h.ledger.visible()})
        else:
            self._reply(404, {"error": f"no route GET {path}; routes: GET /status, GET /ledger, "
                                       "POST /experiments, POST /discard"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        if not self._authorized():
            return
        h = self.server.owner.harness
        path = self.path.split("?", 1)[0].rstrip("/")
        body = self._body()
        if body is None:
            self._reply(400, {"error": f"expected a JSON object of at most {MAX_BODY} bytes"})
            return
        summary, reason = str(body.get("summary") or "").strip(), str(body.get("reason") or "").strip()
        source = self.headers.get("X-Researcher") or "service"
        if path == "/experiments":
            if not summary:
                self._reply(400, {"error": "summary is required: say what you changed"})
                return
            status, out = h.experiment(summary[:2000], reason[:2000], source)
            self._reply(status, out)
        elif path == "/discard":
            self._reply(200, h.abandon(reason[:2000] or "no reason given", source))
        else:
            self._reply(404, {"error": f"no route POST {path}"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: EvalService


class EvalService:
    """Binds 127.0.0.1 at construction (so the URL is known before the workspace is written); serve() starts it."""

    def __init__(self, harness: Harness | None = None, port: int = 0, token: str | None = None) -> None:
        self.harness: Harness = harness  # type: ignore[assignment]  # set before serve()
        self.token = token
        #: every response body sent, for audits (and the tests' "nothing sealed leaked" check)
        self.responses: list[str] = []
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None
        self._extra: list[tuple[_Server, threading.Thread]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def serve(self) -> EvalService:
        if self.harness is None:
            raise RuntimeError("EvalService.serve() needs a harness")
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="autoresearch-service", daemon=True)
        self._thread.start()
        return self

    def serve_socket(self, sock: socket.socket) -> None:
        """Also answer on a listening socket made elsewhere: a jail's own loopback (network "none")."""
        srv = _Server(("127.0.0.1", 0), _Handler, bind_and_activate=False)
        srv.socket.close()
        srv.socket = sock
        srv.owner = self
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                             name="autoresearch-service-jail", daemon=True)
        t.start()
        self._extra.append((srv, t))

    def stop(self) -> None:
        for srv, t in self._extra:
            srv.shutdown()
            t.join(timeout=5)
            srv.server_close()
        self._extra.clear()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()
