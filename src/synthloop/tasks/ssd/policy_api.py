"""The policy API's runtime pieces: namespace, static validator, loader, failures and the audit log.

Shared by both execution modes (:mod:`.policy_sandbox` for the default forked child, :mod:`.episodes` for
the paper's unsafe in-process setting). Nothing here is a security boundary: the validator gives early,
precise messages and the audit hook records what a policy *attempted*; safety comes from the process
boundary and the judge's replay.
"""

from __future__ import annotations

import ast
import builtins
import math
import sys
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from synthloop.tasks.ssd import helpers as H
from synthloop.tasks.ssd.actions import Action, Orientation, direction_to_action
from synthloop.tasks.ssd.state import PolicyState

#: builtins removed from the policy namespace (the reference's list plus ``breakpoint``/``input``).
#: Convenience only: safety comes from the process boundary, not from this list.
REMOVED_BUILTINS = ("__import__", "eval", "exec", "open", "compile", "breakpoint", "input")
#: names the static validator rejects outright (call or attribute), with the reason shown to the model
FORBIDDEN_CALLS = {
    "__import__": "imports are not available", "eval": "eval is not available", "exec": "exec is not available",
    "open": "file access is not available", "compile": "compile is not available",
    "globals": "globals() is not available", "vars": "vars() is not available",
    "breakpoint": "breakpoint is not available", "input": "input is not available",
}
#: audit events that policy code has no honest reason to raise (recorded as attempts)
SUSPICIOUS_EVENT_PREFIXES = (
    "open", "os.", "socket.", "subprocess.", "shutil.", "ctypes.", "gc.get_", "sys._getframe",
    "sys._current_frames", "object.__setattr__", "object.__delattr__", "sys.settrace", "sys.setprofile",
    "signal.", "resource.", "mmap.", "marshal.", "pty.", "fcntl.", "import", "exec", "compile",
)


class PolicyFailure(Exception):
    """The policy failed in one episode (exception, timeout, memory, crash, bad load).

    ``kind`` is one of ``exception``, ``timeout``, ``memory``, ``crash``, ``load``;
    ``str(self)`` is the diagnosis shown to the model (with the policy traceback).
    """

    def __init__(self, kind: str, message: str, *, step: int | None = None, agent: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.step, self.agent = kind, step, agent


class _CallTimeout(BaseException):
    """Raised inside a policy call when its budget is spent (BaseException: harder to swallow)."""


# ------------------------------------------------------------------ namespace and validation
def policy_namespace(n_actions: int, unsafe: bool = False) -> dict[str, Any]:
    """The globals a policy module runs in: helpers, constants, ``np``, ``math``, ``deque``."""
    safe_builtins = {k: v for k, v in vars(builtins).items() if k not in REMOVED_BUILTINS}
    ns: dict[str, Any] = {
        "__builtins__": safe_builtins, "__name__": "policy_module",
        "np": np, "numpy": np, "math": math, "deque": deque,
        "Action": Action, "Orientation": Orientation, "NUM_ACTIONS": n_actions,
        "direction_to_action": direction_to_action,
    }
    for name in H.__all__:
        ns[name] = getattr(H, name)
    # reference spellings (spec §3.2), so reference-style code ports with a rename of env -> state
    ns["_beam_targets_for_orient"] = H.beam_targets
    ns["_rotation_distance"] = H.rotation_distance
    for a in Action:
        ns[a.name] = int(a)
    return ns


def validate_source(code: str) -> list[str]:
    """Early, precise problems with policy source (empty = fine). Not a security boundary."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        return [f"SyntaxError: {e.msg} (line {e.lineno}, column {e.offset})"]
    problems: list[str] = []
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "policy"), None)
    if fn is None:
        problems.append("no top-level function `def policy(state, agent_id)` found")
    elif len(fn.args.args) != 2:
        problems.append(f"line {fn.lineno}: policy must take exactly two arguments (state, agent_id), "
                        f"not {len(fn.args.args)}")
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            problems.append(f"line {line}: imports are not available (np, math and deque are preloaded)")
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in FORBIDDEN_CALLS:
                problems.append(f"line {line}: {name}(...): {FORBIDDEN_CALLS[name]}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr.endswith("__"):
            problems.append(f"line {line}: dunder attribute access `.{node.attr}` is not allowed")
    return problems


def load_policy(code: str, namespace: dict[str, Any]) -> Callable[[Any, int], Any]:
    """Execute the module source in ``namespace`` and return its ``policy``; PolicyFailure('load') if unusable."""
    try:
        exec(builtins.compile(code, "<policy>", "exec"), namespace)  # noqa: S102 - that is the point
    except BaseException as e:  # noqa: BLE001
        raise PolicyFailure("load", "loading the policy module failed:\n" + _policy_tb(e)) from None
    fn = namespace.get("policy")
    if not callable(fn):
        raise PolicyFailure("load", "the module defines no callable `policy(state, agent_id)`")
    return fn


def _policy_tb(e: BaseException) -> str:
    """The traceback frames that belong to the policy (``<policy>``), then the exception line."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == "<policy>"]
    lines = ["Traceback (policy code):"] + [f'  line {f.lineno}, in {f.name}: {(f.line or "").strip()}' for f in frames]
    lines.append(f"{type(e).__name__}: {e}")
    return "\n".join(lines)


def warm_helpers() -> None:
    """Compile the helper kernels for read-only arrays (what policies pass them) before any fork.

    The engine's own warm-up compiles for writable arrays; without this, every fresh policy child would
    load or compile a second specialisation on its first call (slow, and noise in the audit log)."""
    from synthloop.tasks.ssd.config import GameConfig
    from synthloop.tasks.ssd.engine import SSDEngine

    for game, m in (("gathering", "small"), ("cleanup", "small")):
        try:
            eng = SSDEngine(GameConfig.for_game(game, m, n_agents=2, max_steps=2))
        except KeyError:
            continue
        snap = eng.snapshot()
        dyn = ("agent_pos", "agent_orient", "agent_timeout", "agent_beam_hits", "apple_alive", "waste")
        # the unsafe mode's live view: dynamic arrays writable (the engine's own), static ones read-only
        live = PolicyState(**{k: (np.array(getattr(snap, k)) if k in dyn else getattr(snap, k))
                              for k in PolicyState.__slots__ if k != "_cache"})
        for st in (snap.bind({}, (0, 1)), live.bind({}, (0, 1))):
            _warm_one(st)


def _warm_one(st: PolicyState) -> None:
    H.bfs_nearest_apple(st, 0)
    H.bfs_nearest_waste_info(st, 0)
    H.bfs_to_target_set(st, 0, [(1, 1)])
    H.bfs_toward(st, 0, 1, 1)
    H.waste_in_footprint(st, 0)
    H.beam_footprint(st, 1, 1, 0)
    H.get_opponents(st, 0)


# ------------------------------------------------------------------ audit (attempt recording)
class _Audit:
    """One process-wide audit hook (hooks cannot be removed); records only while ``flag[0]`` is set.

    The switch is a list item, not a class attribute: assigning a class attribute is itself an audited
    event (and invalidates type caches), which would cost a hook call twice per policy call."""

    installed = False
    flag = [False]
    events: list[str] = []

    @classmethod
    def install(cls) -> None:
        if not cls.installed:
            sys.addaudithook(_hook)
            cls.installed = True


def _hook(event: str, args: tuple[Any, ...], _flag: list[bool] = _Audit.flag, _ev: list[str] = _Audit.events) -> None:
    if _flag[0] and event.startswith(SUSPICIOUS_EVENT_PREFIXES) and len(_ev) < 200:
        detail = ""
        if args and isinstance(args[0], (str, bytes, int)):
            detail = f" {str(args[0])[:80]}"
        elif event.startswith("object.") and args:
            detail = f" {getattr(args[0], '__name__', type(args[0]).__name__)}.{args[1] if len(args) > 1 else ''}"
        _ev.append(event + detail)


def audit_events() -> list[str]:
    return list(_Audit.events)


def audited(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a policy call so suspicious audit events it raises are recorded."""
    _Audit.install()

    flag = _Audit.flag

    def call(*a: Any) -> Any:
        flag[0] = True
        try:
            return fn(*a)
        finally:
            flag[0] = False

    return call
