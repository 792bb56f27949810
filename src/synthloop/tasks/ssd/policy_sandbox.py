"""Where LLM-written SSD policies execute: a forked policy child fed read-only snapshots.

Why a second process inside the (already sandboxed) case process: the reference
handed the *live* environment to policy code (spec §3.4, §6), so a policy could
rewrite positions, timeouts, waste, apples, the RNG or the engine's class. Here
the case process owns the engine and the policy code runs in a child that

* is forked **before** the engine exists, so no engine, RNG or episode state is
  anywhere in its memory (``gc``, frames and ``__globals__`` find nothing);
* receives each step as bytes over a pipe and rebuilds a :class:`PolicyState`
  whose arrays are read-only views; it answers with N action ids, nothing else;
* cannot read the engine process's memory: the engine side sets
  ``PR_SET_DUMPABLE=0`` after the fork (no ptrace, no ``/proc/PID/mem``);
* closes every inherited descriptor except its two pipe ends (the case's result
  pipe cannot be forged);
* gives each agent its own namespace (module globals never cross agents) and is
  discarded at the end of the episode (nothing crosses episodes);
* runs every call under a per-call time budget (``SIGALRM`` in the child, plus
  a hard deadline enforced by the engine side that kills the child).

The engine side never unpickles anything from the child: answers are raw
int64 actions or a JSON error. A static AST check (:func:`validate_source`)
gives early, precise messages, but nothing above depends on it.

``unsafe_full_state`` (:func:`synthloop.tasks.ssd.episodes.run_unsafe_episode`)
keeps the paper's setting (policy in the engine's process, live state) for
studying reward hacking; :mod:`synthloop.tasks.ssd.integrity` flags the hacks.
"""

from __future__ import annotations

import json
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
_DYN = struct.Struct("<qdd")  # step, waste density, apple spawn prob


def _static_fields(state: PolicyState) -> dict[str, Any]:
    """Fields of a snapshot that do not change within an episode (sent once)."""
    skip = {"step", "agent_pos", "agent_orient", "agent_timeout", "agent_beam_hits", "apple_alive",
            "waste_density", "apple_spawn_prob", "memory", "team", "_cache"}
    return {k: getattr(state, k) for k in PolicyState.__slots__ if k not in skip}


def pack_dynamic(state: PolicyState, cleanup: bool) -> bytes:
    parts = [_DYN.pack(int(state.step), float(state.waste_density), float(state.apple_spawn_prob)),
             state.agent_pos.astype(np.int64).tobytes(), state.agent_orient.astype(np.int64).tobytes(),
             state.agent_timeout.astype(np.int64).tobytes(), state.agent_beam_hits.astype(np.int64).tobytes(),
             state.apple_alive.astype(np.bool_).tobytes()]
    if cleanup:
        parts.append(state.waste.astype(np.bool_).tobytes())
    return b"".join(parts)


def unpack_dynamic(buf: bytes, static: dict[str, Any], cleanup: bool, base_waste: np.ndarray) -> PolicyState:
    """Rebuild a PolicyState from bytes: every array is a read-only view of ``buf``.

    ``static`` holds the per-episode fields except ``waste``; ``base_waste`` is used when the game has none."""
    n, a = int(static["n_agents"]), int(static["n_apples"])
    h, w = int(static["height"]), int(static["width"])
    step, dens, prob = _DYN.unpack_from(buf, 0)
    off = _DYN.size

    def take(dtype: Any, count: int, shape: tuple[int, ...]) -> np.ndarray:
        nonlocal off
        arr = np.frombuffer(buf, dtype=dtype, count=count, offset=off).reshape(shape)
        off += arr.nbytes
        return arr

    pos = take(np.int64, 2 * n, (n, 2))
    orient = take(np.int64, n, (n,))
    timeout = take(np.int64, n, (n,))
    hits = take(np.int64, n, (n,))
    alive = take(np.bool_, a, (a,))
    waste = take(np.bool_, h * w, (h, w)) if cleanup else base_waste
    return PolicyState(**static, step=step, agent_pos=pos, agent_orient=orient, agent_timeout=timeout,
                       agent_beam_hits=hits, apple_alive=alive, waste=waste, waste_density=dens,
                       apple_spawn_prob=prob, memory={}, team=())


def _write_frame(fd: int, payload: bytes) -> None:
    data = memoryview(struct.pack("<I", len(payload)) + payload)
    while data:
        data = data[os.write(fd, data):]


class _FrameReader:
    """Length-prefixed frames from a pipe with one ``read`` per frame in the common case.

    Per-step latency is the sandbox's cost (one round trip per step), so the reader keeps a buffer and
    reads whatever is available instead of reading the header and the body separately."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buf = fd, bytearray()

    def _fill(self, deadline: float | None) -> bool:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read(self, deadline: float | None, max_len: int) -> bytes | None:
        """One frame; None at EOF; TimeoutError past ``deadline``; ValueError if it announces > max_len."""
        while len(self.buf) < 4:
            if not self._fill(deadline):
                return None
        (size,) = struct.unpack_from("<I", self.buf)
        if size > max_len:
            raise ValueError(f"frame of {size} bytes exceeds {max_len}")
        while len(self.buf) < 4 + size:
            if not self._fill(deadline):
                return None
        frame = bytes(self.buf[4:4 + size])
        del self.buf[:4 + size]
        return frame


# ------------------------------------------------------------------ the child
def _child_main(code: str, n_agents: int, n_actions: int, budget_s: float, rd: int, wr: int) -> None:
    """Body of the policy child: load one namespace per agent, then answer steps until EOF."""
    try:
        os.closerange(3, min(rd, wr))
        os.closerange(max(rd, wr) + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        os.closerange(min(rd, wr) + 1, max(rd, wr))
    except OSError:
        pass

    def alarm(_sig: int, _frm: Any) -> None:
        raise _CallTimeout

    signal.signal(signal.SIGALRM, alarm)

    def fail(kind: str, msg: str, step: int | None = None, agent: int | None = None) -> None:
        blob = json.dumps({"kind": kind, "message": msg, "step": step, "agent": agent,
                           "attempts": audit_events()[:50]}).encode()
        _write_frame(wr, b"E" + blob)

    try:
        fns = [audited(load_policy(code, policy_namespace(n_actions))) for _ in range(n_agents)]
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
    base_waste = static.pop("waste")
    memories: list[dict[str, Any]] = [{} for _ in range(n_agents)]
    team = tuple(range(n_agents))
    out = np.empty(n_agents, dtype=np.int64)
    while True:
        frame = reader.read(None, 1 << 26)
        if frame is None:
            os._exit(0)
        if frame == b"Q":
            _write_frame(wr, b"Q" + json.dumps(audit_events()[:50]).encode())
            continue
        state = unpack_dynamic(frame, static, cleanup, base_waste)
        i = -1
        try:
            try:
                for i in range(n_agents):
                    signal.setitimer(signal.ITIMER_REAL, budget_s)  # re-arming replaces the previous call's timer
                    out[i] = _as_action(fns[i](state.bind(memories[i], team), i))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
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
        _write_frame(wr, b"A" + out.tobytes())


class PolicyChild:
    """Engine-side handle of the policy child for one episode (see the module docstring)."""

    def __init__(self, code: str, n_agents: int, n_actions: int, budget_s: float, memory_mb: int | None = None):
        self.n_agents, self.budget_s = n_agents, budget_s
        p2c_r, p2c_w = os.pipe()
        c2p_r, c2p_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        self.affinity = _pin_here()  # the child inherits the pin: both sides share one CPU
        pid = os.fork()
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

    def start(self, first: PolicyState, cleanup: bool) -> None:
        _write_frame(self.wr, pickle.dumps((_static_fields(first), cleanup), protocol=pickle.HIGHEST_PROTOCOL))
        self.cleanup = cleanup
        self.started = True

    def act(self, state: PolicyState) -> np.ndarray:
        """N actions for this step, or PolicyFailure (the child is killed on any failure)."""
        try:
            _write_frame(self.wr, pack_dynamic(state, self.cleanup))
        except OSError:
            pass  # the child is gone: the read below reports why
        deadline = time.monotonic() + self.n_agents * self.budget_s + 1.0
        try:
            frame = self.reader.read(deadline, 1 << 20)
        except TimeoutError:
            self.close()
            raise PolicyFailure("timeout", f"the policy calls of step {state.step} did not finish within "
                                f"{self.n_agents} x {self.budget_s:g} s (per-call budget); the policy process "
                                "was killed", step=int(state.step)) from None
        except ValueError as e:
            self.close()
            raise PolicyFailure("crash", f"the policy process sent a malformed answer ({e})") from None
        if frame is None:
            status = self.close()
            raise PolicyFailure("crash", f"the policy process died at step {state.step} ({status})",
                                step=int(state.step))
        tag, body = frame[:1], frame[1:]
        if tag == b"A" and len(body) == 8 * self.n_agents:
            return np.frombuffer(body, dtype=np.int64).copy()
        if tag == b"E":
            try:
                info = json.loads(body.decode("utf-8", "replace"))
                kind, msg = str(info.get("kind", "exception")), str(info.get("message", ""))[:8000]
                step, agent = info.get("step"), info.get("agent")
                self.attempts = [str(x)[:200] for x in info.get("attempts", [])][:50]
            except (ValueError, AttributeError):
                kind, msg, step, agent = "crash", "unreadable error report", None, None
            self.close()
            raise PolicyFailure(kind if kind in ("exception", "timeout", "memory", "load") else "exception", msg,
                                step=step if isinstance(step, int) else None,
                                agent=agent if isinstance(agent, int) else None)
        self.close()
        raise PolicyFailure("crash", "the policy process sent an unexpected answer")

    def attempts_log(self) -> list[str]:
        """Suspicious audit events the policy raised (as reported by the child; informational only)."""
        try:
            _write_frame(self.wr, b"Q")
            frame = self.reader.read(time.monotonic() + 2.0, 1 << 20)
        except (OSError, TimeoutError, ValueError):
            return []
        if not frame or frame[:1] != b"Q":
            return []
        try:
            return [str(x)[:200] for x in json.loads(frame[1:].decode("utf-8", "replace"))][:50]
        except ValueError:
            return []

    def close(self) -> str:
        """Kill and reap the child; restore the engine side's dumpable flag. Returns how it ended."""
        status = "exited"
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                _, st = os.waitpid(self.pid, 0)
                if os.WIFSIGNALED(st) and os.WTERMSIG(st) != signal.SIGKILL:
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
            if self.affinity is not None:
                try:
                    os.sched_setaffinity(0, self.affinity)
                except OSError:
                    pass
        return status


def _pin_here() -> set[int] | None:
    """Pin this process to the CPU it runs on now; returns the previous affinity (None if unsupported).

    Engine and policy child alternate strictly (one step each), so they never need two CPUs at once; on one
    CPU a pipe round trip is a direct hand-off (~6 us here) instead of a cross-CPU wake-up (~40-55 us), which
    is most of the sandbox's per-step cost for cheap policies."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        old = os.sched_getaffinity(0)
        from synthloop.execution.isolation import libc

        cpu = int(libc.sched_getcpu())
        os.sched_setaffinity(0, {cpu if cpu in old else min(old)})
        return old
    except Exception:  # noqa: BLE001 - pinning is an optimisation only
        return None


def _set_dumpable(value: int) -> int:
    """Set PR_SET_DUMPABLE, returning the previous value (1 where prctl is unavailable)."""
    try:
        from synthloop.execution.isolation import libc

        prev = int(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
        libc.prctl(PR_SET_DUMPABLE, value, 0, 0, 0)
        return prev if prev >= 0 else 1
    except Exception:  # noqa: BLE001 - not Linux
        return 1
