"""Where LLM-written SSD policies execute: a forked policy child fed read-only snapshots.

Why a second process inside the (already sandboxed) case process: the reference
handed the *live* environment to policy code (spec §3.4, §6), so a policy could
rewrite positions, timeouts, waste, apples, the RNG or the engine's class. Here
the case process owns the engine and the policy code runs in a child that

* is forked **before** the engine exists, so no engine, RNG or episode state is
  anywhere in its memory (``gc``, frames and ``__globals__`` find nothing);
* receives each step as bytes over a pipe (only what changes: positions,
  orientations, timeouts, beam hits, apples, waste, step, density; the fixed
  fields once per episode) and rebuilds a :class:`PolicyState` whose arrays are
  read-only views of that step's private ``bytes``; it answers with N action
  ids, one byte each, nothing else;
* cannot read the engine process's memory: the engine side sets
  ``PR_SET_DUMPABLE=0`` after the fork (no ptrace, no ``/proc/PID/mem``);
  nothing is shared between the two but the pipes (no shared memory);
* closes every inherited descriptor except its two pipe ends (the case's result
  pipe cannot be forged);
* gives each agent its own namespace (module globals never cross agents) and is
  discarded at the end of the episode (nothing crosses episodes);
* runs every call under a per-call time budget (a periodic ``SIGALRM``
  watchdog in the child, plus a hard deadline enforced by the engine side that
  kills the child).

The engine side never unpickles anything from the child: answers are raw action
bytes, which it range-checks (anything else is recorded as -1), or a JSON error.
A static AST check (:func:`validate_source`) gives early, precise messages, but
nothing above depends on it.

Cost: one pipe round trip per step for all N agents. On the 2-vCPU dev VM a
paper-size evaluation (5 seeds, N=10, T=1000) costs ~20 us per step more than
in-process (two context switches, four system calls, packing and rebuilding the
state) plus ~10 ms per episode to fork and reap the child;
``benchmarks/bench_ssd_sandbox.py`` measures it. :class:`_Placement` keeps the
pair on one CPU when that is free, where a hand-off is cheapest.

``unsafe_full_state`` (:func:`synthloop.tasks.ssd.episodes.run_unsafe_episode`)
keeps the paper's setting (policy in the engine's process, live state) for
studying reward hacking; :mod:`synthloop.tasks.ssd.integrity` flags the hacks.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import resource
import select
import signal
import struct
import sys
import time
import traceback
from typing import Any

import numpy as np

from synthloop.tasks.ssd.engine import _as_action
from synthloop.tasks.ssd.policy_api import (  # noqa: F401 - re-exported: the sandbox's public surface
    PolicyFailure,
    _Audit,
    _CallTimeout,
    _policy_tb,
    audit_events,
    audited,
    load_policy,
    policy_namespace,
    validate_source,
    warm_helpers,
)
from synthloop.tasks.ssd.state import PolicyState

PR_SET_DUMPABLE, PR_GET_DUMPABLE = 4, 3
# ------------------------------------------------------------------ wire format
# Frames are length-prefixed (u32). Engine -> child: the pickled static fields once, then one fixed-size
# step frame per step, or b"Q" (send the audit log). Child -> engine: b"A" + one byte per agent (the action
# id, 255 for anything outside 0..254), or b"E" + a JSON error report, or b"Q" + JSON.
#: head of a step frame's payload: step, waste density, apple spawn prob (24 bytes, so the int64 block after it
#: stays 8-byte aligned in the child's payload ``bytes``; numba compiles aligned and unaligned arrays apart)
_DYN = struct.Struct("<qdd")
_LEN = struct.Struct("<I")
#: fields that change every step (or per agent); the rest is sent once per episode. Wire order after the
#: head: pos (N×2), orient, timeout, beam hits as one int64 block (5N), apple_alive (A bool), Cleanup's waste
_DYNAMIC = ("step", "agent_pos", "agent_orient", "agent_timeout", "agent_beam_hits", "apple_alive",
            "waste_density", "apple_spawn_prob", "memory", "team", "_cache")
_INVALID = 255  # wire byte for "not an action id" (the engine side records -1)


def _static_fields(state: PolicyState) -> dict[str, Any]:
    """Fields of a snapshot that do not change within an episode (sent once; ``waste`` is the base value)."""
    return {k: getattr(state, k) for k in PolicyState.__slots__ if k not in _DYNAMIC}


class _Packer:
    """Engine side: one preallocated step frame (length prefix + payload) rewritten in place every step.

    The frame is private to the engine process; the child gets a copy through the pipe, never a mapping."""

    def __init__(self, n: int, a: int, h: int, w: int, cleanup: bool) -> None:
        size = _DYN.size + 40 * n + a + (h * w if cleanup else 0)
        self.buf = bytearray(_LEN.size + size)
        _LEN.pack_into(self.buf, 0, size)
        off = _LEN.size + _DYN.size
        ints = np.frombuffer(self.buf, dtype=np.int64, count=5 * n, offset=off)
        self.pos, self.orient = ints[:2 * n].reshape(n, 2), ints[2 * n:3 * n]
        self.timeout, self.hits = ints[3 * n:4 * n], ints[4 * n:]
        off += 40 * n
        self.alive = np.frombuffer(self.buf, dtype=np.bool_, count=a, offset=off)
        self.waste = np.frombuffer(self.buf, dtype=np.bool_, count=h * w, offset=off + a).reshape(h, w) \
            if cleanup else None

    def pack(self, step: int, pos: np.ndarray, orient: np.ndarray, timeout: np.ndarray, hits: np.ndarray,
             alive: np.ndarray, waste: np.ndarray, density: float, prob: float) -> bytearray:
        _DYN.pack_into(self.buf, _LEN.size, int(step), float(density), float(prob))
        self.pos[...] = pos
        self.orient[...] = orient
        self.timeout[...] = timeout
        self.hits[...] = hits
        self.alive[...] = alive
        if self.waste is not None:
            self.waste[...] = waste
        return self.buf

    def from_engine(self, e: Any) -> bytearray:
        return self.pack(e.step_count, e.agent_pos, e.agent_orient, e.agent_timeout, e.agent_beam_hits,
                         e.apple_alive, e.waste, e.waste_density, e.apple_prob)

    def from_state(self, s: PolicyState) -> bytearray:
        return self.pack(s.step, s.agent_pos, s.agent_orient, s.agent_timeout, s.agent_beam_hits, s.apple_alive,
                         s.waste, s.waste_density, s.apple_spawn_prob)


def _state_builder(static: dict[str, Any], cleanup: bool) -> Any:
    """Child side: ``build(payload) -> PolicyState`` whose dynamic arrays are read-only views of ``payload``.

    ``payload`` is a fresh ``bytes`` per step, so arrays a policy keeps in ``memory`` never change afterwards
    (the same as the engine's copied snapshots). The fields that are fixed for the episode are class
    attributes of a per-episode subclass (also named ``PolicyState``), so a step sets only the dynamic slots;
    this runs once per step, and ``PolicyState(**fields)`` costs several times more."""
    n, a = int(static["n_agents"]), int(static["n_apples"])
    h, w = int(static["height"]), int(static["width"])
    fixed = {k: v for k, v in static.items() if not (cleanup and k == "waste")}
    cls = type(PolicyState.__name__, (PolicyState,), {
        "__slots__": (), "__module__": PolicyState.__module__, "__qualname__": PolicyState.__qualname__,
        "__doc__": PolicyState.__doc__, **fixed})
    slot = {k: PolicyState.__dict__[k].__set__ for k in PolicyState.__slots__}
    s_step, s_dens, s_prob = slot["step"], slot["waste_density"], slot["apple_spawn_prob"]
    s_pos, s_orient, s_timeout, s_hits = slot["agent_pos"], slot["agent_orient"], slot["agent_timeout"], \
        slot["agent_beam_hits"]
    s_alive, s_waste, s_cache = slot["apple_alive"], slot["waste"], slot["_cache"]
    new, frombuffer, i64, b1, unpack = object.__new__, np.frombuffer, np.int64, np.bool_, _DYN.unpack_from
    off_i, off_a = _DYN.size, _DYN.size + 40 * n
    off_w = off_a + a
    n2, n3, n4 = 2 * n, 3 * n, 4 * n

    def build(payload: bytes) -> PolicyState:
        st = new(cls)
        step, dens, prob = unpack(payload)
        ints = frombuffer(payload, dtype=i64, count=5 * n, offset=off_i)
        s_step(st, step)
        s_dens(st, dens)
        s_prob(st, prob)
        s_pos(st, ints[:n2].reshape(n, 2))
        s_orient(st, ints[n2:n3])
        s_timeout(st, ints[n3:n4])
        s_hits(st, ints[n4:])
        s_alive(st, frombuffer(payload, dtype=b1, count=a, offset=off_a))
        if cleanup:
            s_waste(st, frombuffer(payload, dtype=b1, count=h * w, offset=off_w).reshape(h, w))
        s_cache(st, {})
        return st

    return build


_NUMPY_WARM = [False]


def warm_numpy() -> None:
    """Make numpy do its lazy imports now, from trusted code (once per process; inherited across fork).

    ``ndarray.sum()``, ``.mean()``, ``.max()``, ``repr(arr)``... import ``numpy``'s helpers on first use through
    the *calling frame's* builtins; policy frames have no ``__import__``, so a process that had never used them
    failed the policy's first call with ``KeyError: '__import__'``."""
    if _NUMPY_WARM[0]:
        return
    for arr in (np.arange(4.0), np.ones((2, 2), dtype=np.int64), np.zeros(3, dtype=bool)):
        for name in ("sum", "mean", "std", "var", "prod", "max", "min", "any", "all", "cumsum", "argmax"):
            getattr(arr, name)()
        arr.clip(0, 1)
        repr(arr)
        str(arr)
    _NUMPY_WARM[0] = True


def _write_frame(fd: int, payload: bytes) -> None:
    _write_all(fd, _LEN.pack(len(payload)) + payload)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    n = os.write(fd, data)
    if n < len(data):
        view = memoryview(data)[n:]
        while view:
            view = view[os.write(fd, view):]


class _FrameReader:
    """Length-prefixed frames from a pipe with one ``read`` per frame in the common case.

    Per-step latency is the sandbox's cost (one round trip per step), so the reader keeps a buffer and
    reads whatever is available instead of reading the header and the body separately; a timeout is
    waited for with one ``poll``."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buf = fd, bytearray()
        self.poll = select.poll()
        self.poll.register(fd, select.POLLIN)

    def _wait(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0 or not self.poll.poll(max(1, math.ceil(left * 1000))):
            raise TimeoutError

    def read(self, timeout_s: float | None, max_len: int) -> bytes | None:
        """One frame; None at EOF; TimeoutError after ``timeout_s``; ValueError if it announces > max_len."""
        deadline = None
        if not self.buf:  # fast path: the whole frame arrives in one read
            if timeout_s is not None and not self.poll.poll(max(1, math.ceil(timeout_s * 1000))):
                raise TimeoutError
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            if len(chunk) >= 4:
                (size,) = _LEN.unpack_from(chunk)
                if size > max_len:
                    raise ValueError(f"frame of {size} bytes exceeds {max_len}")
                if len(chunk) == 4 + size:
                    return chunk[4:]
            self.buf += chunk
        if timeout_s is not None:
            deadline = time.monotonic() + timeout_s
        while True:
            if len(self.buf) >= 4:
                (size,) = _LEN.unpack_from(self.buf)
                if size > max_len:
                    raise ValueError(f"frame of {size} bytes exceeds {max_len}")
                if len(self.buf) >= 4 + size:
                    break
            if deadline is not None:
                self._wait(deadline)
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buf += chunk
        frame = bytes(self.buf[4:4 + size])
        del self.buf[:4 + size]
        return frame


# ------------------------------------------------------------------ the child
def _tick_s(budget_s: float) -> float:
    """Period of the child's budget watchdog (a call is stopped between ``budget_s`` and ~1.2 x that)."""
    return min(0.05, max(0.001, budget_s / 10))


def _load_all(code: str, n_agents: int, n_actions: int) -> list[Any]:
    """One ``policy`` per agent, each from its own namespace; the source is compiled once."""
    import builtins

    fns = []
    try:
        compiled = builtins.compile(code, "<policy>", "exec")
        for _ in range(n_agents):
            ns = policy_namespace(n_actions)
            exec(compiled, ns)  # noqa: S102 - that is the point
            fn = ns.get("policy")
            if not callable(fn):
                raise PolicyFailure("load", "the module defines no callable `policy(state, agent_id)`")
            fns.append(fn)
    except PolicyFailure:
        raise
    except BaseException as e:  # noqa: BLE001 - the same report as load_policy's
        raise PolicyFailure("load", "loading the policy module failed:\n" + _policy_tb(e)) from None
    return fns


def _child_main(code: str, n_agents: int, n_actions: int, budget_s: float, rd: int, wr: int) -> None:
    """Body of the policy child: load one namespace per agent, then answer steps until EOF.

    Per-call budget: a periodic ``SIGALRM`` watchdog, armed once (no system call per policy call). The
    loop publishes the id of the running call; the handler notes when it first sees an id and raises
    :class:`_CallTimeout` once that call has run longer than ``budget_s`` (again at every tick, should
    the policy swallow it). The engine side's hard deadline backs it up."""
    try:
        os.closerange(3, min(rd, wr))
        os.closerange(max(rd, wr) + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        os.closerange(min(rd, wr) + 1, max(rd, wr))
    except OSError:
        pass
    now = time.monotonic
    running = [-1]  # id of the policy call running now (-1: none)
    seen = [-1, 0.0]  # the call id the watchdog saw last, and when it first saw it

    def alarm(_sig: int, _frm: Any) -> None:
        c = running[0]
        if c < 0:
            return
        if c != seen[0]:
            seen[0], seen[1] = c, now()
        elif now() - seen[1] > budget_s:
            raise _CallTimeout

    signal.signal(signal.SIGALRM, alarm)

    def fail(kind: str, msg: str, step: int | None = None, agent: int | None = None) -> None:
        blob = json.dumps({"kind": kind, "message": msg, "step": step, "agent": agent,
                           "attempts": audit_events()[:50]}).encode()
        _write_frame(wr, b"E" + blob)

    _Audit.install()
    flag = _Audit.flag  # audit events count as attempts only while a policy call runs
    try:
        fns = _load_all(code, n_agents, n_actions)
    except PolicyFailure as e:
        fail("load", str(e))
        os._exit(0)
    reader = _FrameReader(rd)
    head = reader.read(None, 1 << 26)
    if head is None:
        os._exit(0)
    static, cleanup = pickle.loads(head)  # trusted: written by the engine side
    for v in static.values():
        if isinstance(v, np.ndarray):
            v.setflags(write=False)  # unpickled copies come back writable; keep the compiled signatures too
    build = _state_builder(static, cleanup)
    memories: list[dict[str, Any]] = [{} for _ in range(n_agents)]
    team = tuple(range(n_agents))
    answer = bytearray(_LEN.pack(1 + n_agents) + b"A" + bytes(n_agents))
    first = _LEN.size + 1
    tick = _tick_s(budget_s)
    signal.setitimer(signal.ITIMER_REAL, tick, tick)
    base = 0
    while True:
        frame = reader.read(None, 1 << 26)
        if frame is None:
            os._exit(0)
        if frame == b"Q":
            _write_frame(wr, b"Q" + json.dumps(audit_events()[:50]).encode())
            continue
        state = build(frame)
        i = -1
        try:
            try:
                for i in range(n_agents):
                    running[0] = base + i
                    flag[0] = True
                    act = _as_action(fns[i](state.bind(memories[i], team), i))
                    flag[0] = False
                    answer[first + i] = act if 0 <= act < _INVALID else _INVALID
            finally:
                running[0] = -1
                flag[0] = False
        except _CallTimeout:
            fail("timeout", f"agent {i}'s policy call at step {state.step} exceeded the per-call budget of "
                 f"{budget_s:g} s", state.step, i)
            os._exit(0)
        except MemoryError as e:
            fail("memory", f"agent {i}'s policy call at step {state.step} ran out of memory:\n{_policy_tb(e)}",
                 state.step, i)
            os._exit(0)
        except BaseException as e:  # noqa: BLE001 - everything the policy raises is a per-episode failure
            fail("exception", f"agent {i}'s policy call at step {state.step} raised:\n{_policy_tb(e)}", state.step, i)
            os._exit(0)
        base += n_agents
        _write_all(wr, answer)


_UNREAPED: list[int] = []  # killed policy children not yet reaped (see PolicyChild.close)


def reap_children(block: bool = False) -> int:
    """Reap killed policy children that have finished exiting (all of them with ``block``); how many are left."""
    for pid in list(_UNREAPED):
        try:
            done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _UNREAPED.remove(pid)
    return len(_UNREAPED)


class PolicyChild:
    """Engine-side handle of the policy child for one episode (see the module docstring)."""

    def __init__(self, code: str, n_agents: int, n_actions: int, budget_s: float, memory_mb: int | None = None):
        reap_children()
        self.n_agents, self.n_actions, self.budget_s = n_agents, n_actions, budget_s
        #: the engine side's hard limit for one step's N calls (the child's watchdog normally fires first)
        self.step_limit_s = n_agents * budget_s + 1.0
        p2c_r, p2c_w = os.pipe()
        c2p_r, c2p_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        warm_numpy()  # before the fork: the child inherits numpy's imports
        self.placement = _Placement()  # before the fork: the child inherits a pin
        try:
            pid = _fork()
        except BaseException:
            self.placement.close()
            for fd in (p2c_r, p2c_w, c2p_r, c2p_w):
                os.close(fd)
            raise
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                os.close(p2c_w)
                os.close(c2p_r)
                try:
                    from synthloop.execution.isolation import PR_SET_PDEATHSIG, prctl

                    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                except Exception:  # noqa: BLE001 - not Linux: the pipe EOF still ends the child
                    pass
                if memory_mb:
                    lim = memory_mb * (1 << 20)
                    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
                    if hard == resource.RLIM_INFINITY or lim < hard:
                        resource.setrlimit(resource.RLIMIT_AS, (lim, hard))
                _child_main(code, n_agents, n_actions, budget_s, p2c_r, c2p_w)
            except BaseException:  # noqa: BLE001 - shows up in the case's captured stderr
                traceback.print_exc()
            finally:
                os._exit(0)
        os.close(p2c_r)
        os.close(c2p_w)
        self.pid, self.wr, self.rd = pid, p2c_w, c2p_r
        self.reader = _FrameReader(c2p_r)
        self.dumpable = _set_dumpable(0)
        self.started = False
        self.attempts: list[str] = []

    def start(self, first: PolicyState, cleanup: bool) -> None:
        _write_frame(self.wr, pickle.dumps((_static_fields(first), cleanup), protocol=pickle.HIGHEST_PROTOCOL))
        self.cleanup = cleanup
        self.packer = _Packer(int(first.n_agents), int(first.n_apples), int(first.height), int(first.width), cleanup)
        self.started = True

    def act(self, state: PolicyState) -> np.ndarray:
        """N actions for this snapshot (-1 for invalid ones), or PolicyFailure (the child is then killed)."""
        out = np.empty(self.n_agents, dtype=np.int64)
        self._exchange(self.packer.from_state(state), int(state.step), out)
        return out

    def act_engine(self, engine: Any, out: np.ndarray) -> int:
        """Write the N actions for the engine's current state into ``out`` (copied straight from the engine's
        arrays: no snapshot object); invalid ids become -1. Returns how many were invalid."""
        return self._exchange(self.packer.from_engine(engine), engine.step_count, out)

    def _exchange(self, frame: bytearray, step: int, out: np.ndarray) -> int:
        placement = self.placement
        placement.count += 1
        if placement.count >= placement.every:
            placement.before(self.pid)
        try:
            _write_all(self.wr, frame)
        except OSError:
            pass  # the child is gone: the read below reports why
        try:
            answer = self.reader.read(self.step_limit_s, 1 << 20)
            if placement.repin:
                placement.after(self.pid)
        except TimeoutError:
            self.close()
            raise PolicyFailure("timeout", f"the policy calls of step {step} did not finish within "
                                f"{self.n_agents} x {self.budget_s:g} s (per-call budget); the policy process "
                                "was killed", step=int(step)) from None
        except ValueError as e:
            self.close()
            raise PolicyFailure("crash", f"the policy process sent a malformed answer ({e})") from None
        if answer is None:
            status = self.close()
            raise PolicyFailure("crash", f"the policy process died at step {step} ({status})", step=int(step))
        if len(answer) == 1 + self.n_agents and answer[0] == 65:  # b"A"
            acts = answer[1:]
            out[:] = np.frombuffer(acts, dtype=np.uint8)
            if max(acts) < self.n_actions:
                return 0
            bad = out >= self.n_actions
            out[bad] = -1
            return int(bad.sum())
        tag, body = answer[:1], answer[1:]
        if tag == b"E":
            try:
                info = json.loads(body.decode("utf-8", "replace"))
                kind, msg = str(info.get("kind", "exception")), str(info.get("message", ""))[:8000]
                at, agent = info.get("step"), info.get("agent")
                self.attempts = [str(x)[:200] for x in info.get("attempts", [])][:50]
            except (ValueError, AttributeError):
                kind, msg, at, agent = "crash", "unreadable error report", None, None
            self.close()
            raise PolicyFailure(kind if kind in ("exception", "timeout", "memory", "load") else "exception", msg,
                                step=at if isinstance(at, int) else None,
                                agent=agent if isinstance(agent, int) else None)
        self.close()
        raise PolicyFailure("crash", "the policy process sent an unexpected answer")

    def attempts_log(self) -> list[str]:
        """Suspicious audit events the policy raised (as reported by the child; informational only)."""
        try:
            _write_frame(self.wr, b"Q")
            frame = self.reader.read(2.0, 1 << 20)
        except (OSError, TimeoutError, ValueError):
            return []
        if not frame or frame[:1] != b"Q":
            return []
        try:
            return [str(x)[:200] for x in json.loads(frame[1:].decode("utf-8", "replace"))][:50]
        except ValueError:
            return []

    def close(self) -> str:
        """Kill the child (reaped now if already gone, else by the next episode or :func:`reap_children`);
        restore the engine side's dumpable flag. Returns how it ended, as far as known now.

        Waiting for a killed child to finish exiting (unmapping its copy of this process) would put ~5 ms
        per episode on the critical path; the kernel does that work in the child's own context anyway."""
        status = "exited"
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                done, st = os.waitpid(self.pid, os.WNOHANG)
                if not done:
                    status = "killed"
                    _UNREAPED.append(self.pid)
                elif os.WIFSIGNALED(st) and os.WTERMSIG(st) != signal.SIGKILL:
                    status = f"killed by signal {os.WTERMSIG(st)}"
            except ChildProcessError:
                pass
            self.pid = 0
            for fd in (self.wr, self.rd):
                try:
                    os.close(fd)
                except OSError:
                    pass
            _set_dumpable(self.dumpable)
            self.placement.close()
        return status


def _fork() -> int:
    """``fork`` without Python's at-fork hooks where safe (single-threaded caller; see ``fork_bare``): they
    would only re-initialise state that is already consistent, and each page they write is a copy-on-write
    fault (~1.3 ms less per episode on the dev VM)."""
    try:
        from synthloop.execution.isolation import fork_bare
    except Exception:  # noqa: BLE001 - not Linux
        return os.fork()
    return fork_bare()


class _Placement:
    """Which CPUs the engine side and its policy child run on: a matter of speed only.

    The two alternate strictly (one step each), so they never need two CPUs at once. Pinned to one CPU, a
    pipe round trip is a direct hand-off (~6 us on the 2-vCPU dev VM) instead of a wake-up of another, idle
    CPU (~50 us there), which dominates a step of a cheap policy. But pinned pairs cannot be balanced by the
    scheduler: with more episodes than CPUs some CPU runs a queue of them while another idles. So: every
    ``every`` steps, look at the machine's runnable-task count (``/proc/loadavg``). More runnable tasks than
    usable CPUs: stay (or become) unpinned and let the scheduler balance. Otherwise: pin, and rebalance by
    unpinning the engine side for one round trip, so that the wake-up which ends it may move it to an idle
    CPU, then pinning both sides to wherever it woke."""

    def __init__(self, every: int = 32) -> None:
        self.every, self.count = every, 0
        self.cpus: set[int] | None = None
        self.pinned = self.repin = False
        self.load_fd = -1
        try:
            from synthloop.execution.isolation import libc

            self.getcpu = libc.sched_getcpu
            cpus = os.sched_getaffinity(0)
        except Exception:  # noqa: BLE001 - not Linux: nothing to decide
            return
        if len(cpus) < 2:
            return
        self.cpus = cpus
        try:
            self.load_fd = os.open("/proc/loadavg", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            pass
        if not self._busy():
            self._pin(0)

    def _busy(self) -> bool:
        """More runnable tasks on the machine right now than CPUs this process may use?"""
        if self.load_fd < 0 or self.cpus is None:
            return False
        try:
            runnable = int(os.pread(self.load_fd, 128, 0).split()[3].split(b"/")[0])
        except (OSError, ValueError, IndexError):
            return False
        return runnable > len(self.cpus)

    def _pin(self, *pids: int) -> None:
        try:
            cpu = {int(self.getcpu())}
            for pid in pids:
                os.sched_setaffinity(pid, cpu)
            self.pinned = True
        except Exception:  # noqa: BLE001 - pinning is an optimisation only
            pass

    def _unpin(self, *pids: int) -> None:
        try:
            for pid in pids:
                os.sched_setaffinity(pid, self.cpus)  # type: ignore[arg-type]
        except OSError:
            pass

    def before(self, child: int) -> None:
        """Every ``every`` steps, before the engine side hands a step to the child."""
        self.count = 0
        if self.cpus is None:
            return
        if self._busy():
            if self.pinned:
                self._unpin(0, child)
                self.pinned = False
        else:
            self._unpin(0)  # the wake-up at the end of this round trip may move us to an idle CPU
            self.repin = True

    def after(self, child: int) -> None:
        """After that round trip: pin both sides to the CPU the engine side woke up on."""
        self.repin = False
        self._pin(child, 0)

    def close(self) -> None:
        if self.cpus is not None:
            self._unpin(0)
            self.cpus = None
        if self.load_fd >= 0:
            os.close(self.load_fd)
            self.load_fd = -1


def _set_dumpable(value: int) -> int:
    """Set PR_SET_DUMPABLE, returning the previous value (1 where prctl is unavailable)."""
    try:
        from synthloop.execution.isolation import libc

        prev = int(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
        libc.prctl(PR_SET_DUMPABLE, value, 0, 0, 0)
        return prev if prev >= 0 else 1
    except Exception:  # noqa: BLE001 - not Linux
        return 1
