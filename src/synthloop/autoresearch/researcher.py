"""Researcher drivers: a built-in tool-using agent on any synthloop model, and any external agent CLI.

Built-in protocol (plain chat text, so it works with every model string,
including ones without native tool calling): each answer holds exactly one JSON
object ``{"tool": NAME, "args": {...}}`` (a fenced ```json block or bare); the
harness answers with ``TOOL RESULT: {...}``. File tools act on the workspace
only, through :class:`Workspace` (traversal, frozen and unknown files are
refused and recorded); scores come only from the service over HTTP, exactly
as for an external agent. Every message the researcher receives is kept in
:attr:`BuiltinResearcher.transcript` for audit.

External driver: a command template run in the workspace, e.g.
``claude -p {prompt} --permission-mode acceptEdits`` or ``codex exec {prompt}``.
Placeholders ``{prompt}``, ``{url}``, ``{workspace}``, ``{program}`` are
substituted *after* shell-style splitting, so values never become syntax.
The agent learns the rules from program.md and reaches scores only via the URL.
It runs in a :class:`~synthloop.autoresearch.jail.ResearcherJail` (the
workspace writable, the run directory invisible, an allow-listed
environment) and its whole process tree is killed when the budget ends.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synthloop.autoresearch.jail import JailPolicy, ResearcherJail
from synthloop.autoresearch.ledger import Ledger
from synthloop.autoresearch.workspace import Refused, Workspace
from synthloop.llm.base import LLMError, LLMRequest, Synthesizer

TOOLS = """Tools (answer with exactly one JSON object per message, e.g. {"tool": "read_file", "args": {"path": "pipeline/feedback.py"}}):
- list_files {}                                  files in the workspace
- read_file {"path"}                             a file's text
- write_file {"path", "content"}                 replace an editable pipeline file
- replace_in_file {"path", "old", "new"}         replace one exact occurrence of `old`
- run_experiment {"summary", "reason"}           measure the workspace now; the harness keeps or discards
- discard {"reason"}                             abandon unmeasured edits (restore the incumbent)
- ledger {}                                      every experiment so far
- status {}                                      budget and incumbent
- finish {"reason"}                              stop researching"""

MAX_RESULT_CHARS = 8000


def http_json(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 3600.0,
              who: str = "researcher", token: str | None = None) -> tuple[int, Any]:
    """One JSON request to the service; HTTP errors come back as (status, body), never raise."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "X-Researcher": who}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - 127.0.0.1 service
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def parse_tool_call(text: str) -> tuple[str, dict[str, Any]]:
    """The first JSON object with a "tool" key in ``text``; ValueError with a fixable message otherwise."""
    dec = json.JSONDecoder()
    i = text.find("{")
    while i != -1:
        try:
            obj, _ = dec.raw_decode(text, i)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("tool"), str):
            args = obj.get("args") or {}
            if not isinstance(args, dict):
                raise ValueError('"args" must be a JSON object')
            return obj["tool"], args
        i = text.find("{", i + 1)
    raise ValueError('no tool call found: answer with one JSON object {"tool": ..., "args": {...}}')


class BuiltinResearcher:
    """A tool-using researcher on any synthloop model string (openai/, anthropic/, ollama/, replay:)."""

    def __init__(self, synth: Synthesizer, model: str, ws: Workspace, ledger: Ledger, url: str, program: str,
                 *, max_turns: int = 60, max_tokens: int = 4096, temperature: float | None = None,
                 keep_turns: int = 12, token: str | None = None) -> None:
        self.synth = synth
        self.token = token
        self.model = model
        self.ws = ws
        self.ledger = ledger
        self.url = url
        self.program = program
        self.max_turns = max_turns
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.keep_turns = keep_turns
        #: every message sent to the researcher (system prompt, tool results): its whole view of the run
        self.transcript: list[str] = []

    def run(self) -> str:
        """Research until ``finish``, a spent budget, max turns or a failed model call; returns why it stopped."""
        return asyncio.run(self._run())

    async def _run(self) -> str:
        system = f"{self.program}\n\n## How you act\n{TOOLS}\n"
        first = "Begin. The baseline (starting pipeline) has been measured; see `ledger`."
        msgs: list[dict[str, str]] = [{"role": "system", "content": system}, {"role": "user", "content": first}]
        self.transcript += [system, first]
        try:
            for _turn in range(self.max_turns):
                code, st = self._http("GET", "/status")
                if code == 200 and st.get("spent_llm"):  # no more LLM spend; evaluations end with a 429
                    return f"budget spent: {st['spent']}"
                try:
                    resp = await self.synth.complete(LLMRequest(messages=msgs, max_tokens=self.max_tokens,
                                                                temperature=self.temperature))
                except LLMError as e:
                    self.ledger.add_llm("researcher", self.model, error=str(e))
                    return f"researcher model failed: {e}"
                self.ledger.add_llm("researcher", self.model, input_tokens=resp.usage.input_tokens,
                                    output_tokens=resp.usage.output_tokens, cost_usd=resp.cost_usd)
                msgs.append({"role": "assistant", "content": resp.text})
                msgs = self._trim(msgs)
                try:
                    tool, args = parse_tool_call(resp.text)
                except ValueError as e:
                    result: Any = {"error": str(e)}
                    tool = ""
                else:
                    if tool == "finish":
                        return f"researcher finished: {str(args.get('reason', ''))[:500]}"
                    result = self.call(tool, args)
                text = "TOOL RESULT: " + json.dumps(result, default=str)
                if len(text) > MAX_RESULT_CHARS:
                    text = text[: MAX_RESULT_CHARS - 40] + " ... (truncated)"
                self.transcript.append(text)
                msgs.append({"role": "user", "content": text})
                if tool == "run_experiment" and isinstance(result, dict) and result.get("status") == 429:
                    return f"budget spent: {result.get('error')}"
            return f"max turns reached ({self.max_turns})"
        finally:
            await self.synth.aclose()

    def _http(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        return http_json(method, self.url + path, body, token=self.token)

    def _trim(self, msgs: list[dict[str, str]]) -> list[dict[str, str]]:
        """Keep the system prompt, the opening and the last ``keep_turns`` exchanges: long runs must fit any
        context window, and the ledger tool (not the chat) is the researcher's durable memory."""
        keep = 2 * self.keep_turns
        if len(msgs) <= keep + 3:
            return msgs
        note = {"role": "user", "content": "(earlier turns omitted; call `ledger` for every experiment so far)"}
        tail = msgs[-keep:]
        if tail[0]["role"] == "user":  # keep strict user/assistant alternation after the note
            tail = tail[1:]
        return [msgs[0], msgs[1], {"role": "assistant", "content": '{"tool": "ledger", "args": {}}'}, note, *tail]

    def call(self, tool: str, args: dict[str, Any]) -> Any:
        """Execute one tool; refusals are recorded in the ledger and returned as errors."""
        try:
            if tool == "list_files":
                return {"files": self.ws.list_files()}
            if tool == "read_file":
                return {"path": args.get("path"), "content": self.ws.read(str(args.get("path", "")))}
            if tool == "write_file":
                self.ws.write(str(args.get("path", "")), args.get("content"))  # type: ignore[arg-type]
                return {"ok": True, "path": args.get("path")}
            if tool == "replace_in_file":
                path = str(args.get("path", ""))
                old, new = str(args.get("old", "")), str(args.get("new", ""))
                text = self.ws.read(path)
                if not old or text.count(old) != 1:
                    return {"error": f"`old` must occur exactly once in {path} (found {text.count(old) if old else 0})"}
                self.ws.write(path, text.replace(old, new, 1))
                return {"ok": True, "path": path}
            if tool == "run_experiment":
                code, body = self._http("POST", "/experiments",
                                        {"summary": args.get("summary", ""), "reason": args.get("reason", "")})
                return {"status": code, **(body if isinstance(body, dict) else {"body": body})}
            if tool == "discard":
                return self._http("POST", "/discard", {"reason": args.get("reason", "")})[1]
            if tool == "ledger":
                return self._http("GET", "/ledger")[1]
            if tool == "status":
                return self._http("GET", "/status")[1]
            return {"error": f"unknown tool {tool!r}; see the tool list"}
        except Refused as e:
            self.ledger.refuse("researcher", e.action, e.path, e.reason)
            return {"error": str(e), "refused": True}


def run_external(template: str, ws: Workspace, url: str, log_path: Path, timeout_s: float | None,
                 env: dict[str, str] | None = None, should_stop: Callable[[], str] | None = None,
                 grace_s: float = 60.0, *, jail: ResearcherJail | None = None, token: str | None = None,
                 on_listen: Callable[[socket.socket], None] | None = None) -> str:
    """Run an external agent CLI in the workspace, in ``jail``, until it exits; returns why it stopped.

    It is stopped (its whole process tree) at the wall budget, or ``grace_s`` after ``should_stop`` first
    reports a spent budget: an agent that ignores its 429s must not keep the run from ending. Without a
    ``jail`` it runs unjailed (environment allow-list and tree kill only). ``env`` adds variables.
    """
    program = ws.root / "program.md"
    prompt = (f"You are the researcher of an autoresearch run. Read {program} and follow it exactly. "
              f"Scores come only from the evaluation service at {url} (also in $SYNTHLOOP_SERVICE_URL).")
    if token:
        prompt += " Send the header 'Authorization: Bearer $SYNTHLOOP_SERVICE_TOKEN' with every request."
    values = {"prompt": prompt, "url": url, "workspace": str(ws.root), "program": str(program)}
    try:
        argv = [tok.format(**values) for tok in shlex.split(template)]
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"bad researcher command template {template!r}: {e}; placeholders: "
                         "{prompt}, {url}, {workspace}, {program}") from None
    if not argv:
        raise ValueError("empty researcher command template")
    own = jail is None
    if jail is None:
        jail = ResearcherJail(JailPolicy(mode="none"), "none", ws.root.parent, ws.root)
    full_env = {**jail.environment(url, token), **(env or {})}
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    try:
        with open(log_path, "ab") as log:
            proc = jail.start(argv, full_env, log, port=port, on_listen=on_listen)
            t0 = time.monotonic()
            spent_at: float | None = None
            why = ""
            try:
                while proc.poll() is None:
                    now = time.monotonic()
                    if timeout_s is not None and now - t0 >= timeout_s:
                        why = f"external researcher stopped at the wall budget ({timeout_s:g} s)"
                    elif should_stop is not None and spent_at is None and should_stop():
                        spent_at = now
                    elif spent_at is not None and now - spent_at >= grace_s:
                        why = f"external researcher stopped {grace_s:g} s after the budget was spent"
                    if why:
                        break
                    time.sleep(0.1)
            finally:  # a stop, Ctrl-C or a crash of the harness: the whole tree goes (PID 1 of its namespace)
                jail.stop(proc)
            if why:
                return why
    finally:
        if own:
            jail.close()
    if proc.returncode == 125:
        return (f"external researcher exited with status 125 (the jail could not be set up, or the command"
                f" failed; see {log_path.name})")
    return f"external researcher exited with status {proc.returncode}"
