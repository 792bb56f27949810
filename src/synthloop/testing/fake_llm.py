"""Scriptable fake LLM servers on 127.0.0.1 for tests and benchmarks.

:class:`FakeOpenAIServer` speaks ``POST /v1/chat/completions`` (and answers
``GET /api/tags`` like Ollama, ``GET /v1/models``); :class:`FakeAnthropicServer`
speaks ``POST /v1/messages``. Both are driven by the real SDKs, so a test
exercises the same code path as a real run, minus the network.

What to answer is decided per request, either by a responder callable
``(request_json) -> FakeReply | dict | str`` or by a queue of scripted replies
consumed in order. A ``dict`` is sent as the JSON body verbatim (use it for
shapes the protocol does not allow, such as no choices); a ``str`` is a plain
text answer. Every request is recorded in :attr:`FakeServer.requests`.

The server is built for near-zero overhead (the engine benchmark measures
*our* overhead against it): HTTP/1.1 keep-alive, TCP_NODELAY on every
accepted socket (without it each call waits ~40 ms for delayed ACKs), one
``write`` per response, no logging.

Example::

    with FakeOpenAIServer([FakeReply.error(429, retry_after=0.2), "```python\\nx = 1\\n```"]) as srv:
        synth = OpenAISynthesizer("gpt-4.1-mini", base_url=srv.base_url, api_key="test")
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeReply", "RecordedRequest", "FakeServer", "FakeOpenAIServer", "FakeAnthropicServer"]


@dataclass
class FakeReply:
    """One scripted reply. Build it with the class methods; fields combine (e.g. a delay before an error)."""

    text: str | None = "ok"
    reasoning: str | None = None
    #: {"input_tokens", "output_tokens", "reasoning_tokens", "cached_input_tokens"}; estimated when None
    usage: dict[str, int] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: raw body: a dict is sent as JSON, str/bytes verbatim; overrides the protocol rendering
    body: dict[str, Any] | str | bytes | None = None
    delay_s: float = 0.0
    drop: bool = False
    finish_reason: str | None = None
    #: error message rendered in the protocol's error body
    message: str | None = None

    @classmethod
    def answer(cls, text: str, reasoning: str | None = None, usage: dict[str, int] | None = None,
               delay_s: float = 0.0, finish_reason: str | None = None) -> FakeReply:
        return cls(text=text, reasoning=reasoning, usage=usage, delay_s=delay_s, finish_reason=finish_reason)

    @classmethod
    def error(cls, status: int, retry_after: float | str | None = None, body: dict[str, Any] | str | None = None,
              message: str | None = None) -> FakeReply:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return cls(text=None, status=status, headers=headers, body=body, message=message or f"fake error {status}")

    @classmethod
    def slow(cls, delay_s: float, text: str = "ok") -> FakeReply:
        return cls(text=text, delay_s=delay_s)

    @classmethod
    def dropped(cls, delay_s: float = 0.0) -> FakeReply:
        """Read the request, then close the connection without answering."""
        return cls(text=None, drop=True, delay_s=delay_s)

    @classmethod
    def invalid_json(cls) -> FakeReply:
        return cls(text=None, body=b'{"choices": [ {"message": ')

    @classmethod
    def raw(cls, body: dict[str, Any] | str | bytes, status: int = 200) -> FakeReply:
        return cls(text=None, body=body, status=status)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    json: Any
    t: float


Responder = Callable[[dict[str, Any]], "FakeReply | dict[str, Any] | str"]


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover
            pass
        self.server.owner._connections.add(self.connection)

    def finish(self) -> None:
        self.server.owner._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:  # e.g. Anthropic's 529
            reason = "Status"
        head = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self.server.owner._record("GET", self.path, self.headers, None)
        status, body = self.server.owner.handle_get(self.path)
        self._send(status, json.dumps(body).encode())

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"_unparseable": raw.decode("utf-8", "replace")}
        owner = self.server.owner
        owner._record("POST", self.path, self.headers, payload)
        reply = owner._next_reply(payload)
        if reply.delay_s > 0:
            time.sleep(reply.delay_s)
        if reply.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if reply.body is not None:
            b = reply.body
            body = json.dumps(b).encode() if isinstance(b, dict) else (b.encode() if isinstance(b, str) else b)
        elif reply.status >= 400:
            body = json.dumps(owner.render_error(reply)).encode()
        else:
            body = json.dumps(owner.render(reply, payload)).encode()
        try:
            self._send(reply.status, body, reply.headers)
        except OSError:  # the client gave up (timeout test): nothing to do
            self.close_connection = True


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the default 5 drops SYNs under concurrency (1 s retransmit stalls)
    owner: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out or vanish are part of the script, not errors


class FakeServer:
    """Base: a threaded HTTP server on 127.0.0.1, a reply script, and a request log."""

    default_model = "fake-model"

    def __init__(self, responder: Responder | Iterable[FakeReply | dict[str, Any] | str] | None = None,
                 *, port: int = 0, ollama_models: list[str] | None = None, record: bool = True) -> None:
        self._responder: Responder | None = None
        self._queue: deque[FakeReply | dict[str, Any] | str] | None = None
        if responder is None:
            self._responder = lambda req: FakeReply.answer("ok")
        elif callable(responder):
            self._responder = responder
        else:
            self._queue = deque(responder)
        self.ollama_models = list(ollama_models or [])
        #: every request received (turn off with ``record=False`` for long benchmarks)
        self.requests: list[RecordedRequest] = []
        self.record = record
        self.n_requests = 0
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.owner = self
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> FakeServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"{type(self).__name__}:{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close idle keep-alive connections (their handler threads end), close the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=2)
            self._thread = None
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the form ``OLLAMA_HOST`` takes."""
        return f"127.0.0.1:{self.port}"

    # -- script
    def push(self, *replies: FakeReply | dict[str, Any] | str) -> None:
        """Append replies to the queue (switches a responder-driven server to queue mode)."""
        with self._lock:
            if self._queue is None:
                self._queue = deque()
            self._queue.extend(replies)

    @property
    def bodies(self) -> list[Any]:
        """JSON bodies of the POST requests, in arrival order."""
        return [r.json for r in self.requests if r.method == "POST"]

    def _record(self, method: str, path: str, headers: Any, payload: Any) -> None:
        with self._lock:
            self.n_requests += 1
            if self.record:
                lowered = {k.lower(): v for k, v in headers.items()}
                self.requests.append(RecordedRequest(method, path, lowered, payload, time.monotonic()))

    def clear(self) -> None:
        """Forget the recorded requests (the count too)."""
        with self._lock:
            self.requests.clear()
            self.n_requests = 0

    def _next_reply(self, payload: dict[str, Any]) -> FakeReply:
        if self._queue is not None:
            with self._lock:
                item = self._queue.popleft() if self._queue else None
            if item is None:
                return FakeReply.error(500, message="fake server: reply queue exhausted")
        else:
            assert self._responder is not None
            try:
                item = self._responder(payload)
            except Exception as e:  # noqa: BLE001 - a broken responder becomes a visible 500
                return FakeReply.error(500, message=f"fake server responder raised {type(e).__name__}: {e}")
        if isinstance(item, FakeReply):
            return item
        if isinstance(item, str):
            return FakeReply.answer(item)
        return FakeReply.raw(item)

    def handle_get(self, path: str) -> tuple[int, Any]:
        if path.rstrip("/").endswith("/api/tags"):
            return 200, {"models": [{"name": m, "model": m} for m in self.ollama_models]}
        if path.rstrip("/").endswith("/models"):
            return 200, {"object": "list", "data": [{"id": m, "object": "model"} for m in self.ollama_models]}
        return 404, {"error": {"message": f"no route {path}"}}

    # -- protocol rendering (subclasses)
    def render(self, reply: FakeReply, request: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def render_error(self, reply: FakeReply) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def _usage(reply: FakeReply, request: dict[str, Any]) -> dict[str, int]:
        if reply.usage is not None:
            return dict(reply.usage)
        prompt = json.dumps(request.get("messages", ""))
        return {"input_tokens": _estimate_tokens(prompt), "output_tokens": _estimate_tokens(reply.text or "")}


class FakeOpenAIServer(FakeServer):
    """OpenAI Chat Completions; ``reasoning`` goes out as ``message.reasoning_content`` (vLLM/DeepSeek style)."""

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def render(self, reply: FakeReply, request: dict[str, Any]) -> dict[str, Any]:
        u = self._usage(reply, request)
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.reasoning is not None:
            message["reasoning_content"] = reply.reasoning
        usage: dict[str, Any] = {"prompt_tokens": u.get("input_tokens", 0),
                                 "completion_tokens": u.get("output_tokens", 0),
                                 "total_tokens": u.get("input_tokens", 0) + u.get("output_tokens", 0)}
        if u.get("reasoning_tokens"):
            usage["completion_tokens_details"] = {"reasoning_tokens": u["reasoning_tokens"]}
        if u.get("cached_input_tokens"):
            usage["prompt_tokens_details"] = {"cached_tokens": u["cached_input_tokens"]}
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": request.get("model") or self.default_model,
                "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason or "stop"}],
                "usage": usage}

    def render_error(self, reply: FakeReply) -> dict[str, Any]:
        return {"error": {"message": reply.message or "error", "type": "fake_error", "code": reply.status}}


class FakeAnthropicServer(FakeServer):
    """Anthropic Messages; ``reasoning`` goes out as a thinking block before the text block."""

    def render(self, reply: FakeReply, request: dict[str, Any]) -> dict[str, Any]:
        u = self._usage(reply, request)
        content: list[dict[str, Any]] = []
        if reply.reasoning is not None:
            content.append({"type": "thinking", "thinking": reply.reasoning, "signature": "fake-signature"})
        if reply.text is not None:
            content.append({"type": "text", "text": reply.text})
        usage = {"input_tokens": u.get("input_tokens", 0) - u.get("cached_input_tokens", 0),
                 "output_tokens": u.get("output_tokens", 0),
                 "cache_read_input_tokens": u.get("cached_input_tokens", 0), "cache_creation_input_tokens": 0}
        return {"id": "msg_fake", "type": "message", "role": "assistant",
                "model": request.get("model") or self.default_model, "content": content,
                "stop_reason": reply.finish_reason or "end_turn", "stop_sequence": None, "usage": usage}

    def render_error(self, reply: FakeReply) -> dict[str, Any]:
        kind = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error",
                403: "permission_error", 404: "not_found_error", 400: "invalid_request_error"}.get(
                    reply.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": reply.message or "error"}}
