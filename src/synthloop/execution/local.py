"""The local executor: sandboxed cases on this machine, forked from a warm zygote.

Processes::

    engine (asyncio) ◀─control socket─▶ zygote ──fork──▶ supervisor ──fork──▶ candidate
      │  ▲                                               ▲  │                    ▲
      │  └─ outcome ──────────── supervisor's channel ───┘  │                    │
      ├─ job header ───────────────────────────────────────▶┘                    │
      └─ job ─────────────────────────────────── the candidate's job pipe ───────┘

* ``start()`` forks the **zygote** before the engine starts threads or creates
  API clients. The zygote inherits the built task (warm caches included) and
  every pre-imported module, scrubs its environment, and stays single-threaded.
* The zygote forks ``workers`` long-lived **supervisors** and hands each one's
  channel (a Unix socket) to the engine over the control socket (SCM_RIGHTS).
  After that it only reaps and respawns them, and forks a one-shot supervisor
  with network access when the engine asks for one: it is not on a job's path.
* Each supervisor always holds a prepared, locked-down candidate process (see
  :mod:`synthloop.execution.sandbox`), so forks, namespaces and privilege drop
  are off the critical path, and hands the write end of that candidate's job
  pipe to the engine. A job is one write into that pipe (the candidate wakes and
  runs it) and a header to the supervisor (which starts the wall clock); the
  outcome (JSON metadata + the raw JSON result) comes back on the supervisor's
  channel. The engine parses JSON only: nothing a candidate produced is ever
  unpickled. A candidate serves one job.
* Lifetime: the zygote gets SIGTERM when the engine dies (PR_SET_PDEATHSIG) and
  also exits on EOF of the control socket; supervisors and candidates get SIGKILL
  when their parent dies; a candidate is PID 1 of its PID namespace, so its
  death takes every process it spawned with it. Nothing outlives the engine.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import itertools
import os
import resource
import select
import signal
import socket
import struct
import sys
import time
import warnings
from typing import NoReturn

from synthloop.core.task import Task
from synthloop.core.types import Artifact, Case
from synthloop.execution import isolation as iso
from synthloop.execution import sandbox as sb
from synthloop.execution.base import CaseOutcome, Executor, Limits

# zygote → engine on the control socket: kind, supervisor pid, network flag (_NEW) or wait status (_DIED)
_CTL = struct.Struct("!cxxxIi")
_NEW, _DIED = b"S", b"D"
_NETWORK_REQUEST = b"N"  # engine → zygote: fork a one-shot supervisor with network access


class _Supervisor:
    """The engine's view of one supervisor: its channel, its prepared candidate, its job."""

    __slots__ = ("pid", "sock", "network", "stream", "job_fd", "fut", "case_id")

    def __init__(self, pid: int, fd: int, network: bool) -> None:
        self.pid, self.network = pid, network
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(False)
        self.stream = sb.SupervisorStream()
        self.job_fd = -1  # write end of the prepared candidate's job pipe (-1: none could be prepared)
        self.fut: asyncio.Future[CaseOutcome] | None = None
        self.case_id = ""


class LocalExecutor(Executor):
    """A pool of sandboxed workers on this machine (one fresh process tree per case).

    ``workers`` bounds concurrently running cases (one reusable supervisor
    each, always holding a prepared candidate). ``isolation`` forces a
    sandbox level ("root", "userns", "basic") instead of probing ("auto").
    Call ``start()`` from the main thread, before threads and API clients exist
    (the zygote's parent-death signal is tied to the forking thread).
    """

    name = "local"

    def __init__(self, task: Task, workers: int | None = None, *, isolation: str = "auto") -> None:
        self.task = task
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.isolation = isolation
        #: grace after ``wall_s`` before the engine gives up on a silent supervisor and kills it
        self.backstop_s = sb.BACKSTOP_S
        self.plan: iso.Plan | None = None
        self.zygote_pid = 0
        self._ctl: socket.socket | None = None
        self._ctl_buf = bytearray()
        self._ctl_fds: collections.deque[int] = collections.deque()
        self._sups: dict[int, _Supervisor] = {}  # pid -> supervisor whose channel we hold
        self._dying: dict[int, _Supervisor] = {}  # channel closed mid-job: waiting for the zygote's wait status
        self._idle: collections.deque[_Supervisor] = collections.deque()  # ready, no job
        self._waiting: collections.deque[asyncio.Future[_Supervisor | None]] = collections.deque()
        self._net_waiting: collections.deque[asyncio.Future[_Supervisor | None]] = collections.deque()
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore | None = None
        self._dead = ""  # why the sandbox can no longer run jobs ("" while healthy)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.zygote_pid:
            return
        pools = fork_unsafe_thread_pools()
        if pools:
            warnings.warn(f"{pools} already runs in this process; candidates forked from it may hang at their "
                          "first parallel region. Start the executor before running parallel code here (the "
                          "synthloop CLI does).", RuntimeWarning, stacklevel=2)
        self.plan = iso.probe(self.isolation)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        parent = os.getpid()
        # Ctrl-C goes to the terminal's whole process group: held back across the fork, so the zygote cannot
        # take it (and print a KeyboardInterrupt traceback) before it has left the group and ignores it
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        pid = -1
        try:
            pid = iso.fork()
            if pid == 0:
                with contextlib.suppress(ValueError):  # not the main thread: left as it is
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                os.close(ours.detach())
                _zygote_main(self.task, self.plan, theirs.detach(), parent, self.workers, mask)
        finally:
            if pid != 0:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        theirs.close()
        ours.setblocking(False)
        self.zygote_pid, self._ctl, self._dead = pid, ours, ""

    def close(self) -> None:
        """Stop the zygote; every supervisor and candidate is killed and reaped before this returns."""
        if not self.zygote_pid:
            return
        assert self._ctl is not None
        live = self._loop is not None and not self._loop.is_closed()
        if live:
            assert self._loop is not None
            self._loop.remove_reader(self._ctl.fileno())
        self._fail_all("executor closed")
        for sup in list(self._sups.values()):
            self._drop(sup, "")  # EOF on its channel: an idle supervisor exits
        self._ctl.close()  # EOF: the zygote terminates its supervisors, which kill their candidates
        # the zygote reaps every supervisor (SIGKILL after a grace) before it exits
        if not _wait_pid(self.zygote_pid, 3.0):
            _killpg(self.zygote_pid)
            _wait_pid(self.zygote_pid, None)
        while self._ctl_fds:
            os.close(self._ctl_fds.popleft())
        self._ctl_buf.clear()
        self.zygote_pid, self._ctl = 0, None
        self._loop = self._sem = None

    # ------------------------------------------------------------ running
    async def run(self, artifact: Artifact, cases: list[Case], limits: Limits) -> list[CaseOutcome]:
        if not self.zygote_pid:
            raise RuntimeError("LocalExecutor.run() called before start()")
        self._attach_loop()
        a_d = artifact.to_dict()
        if len(cases) == 1:  # no task in between: an idle supervisor gets the job in the caller's step
            return [await self._run_case(a_d, cases[0], limits)]
        return list(await asyncio.gather(*(self._run_case(a_d, c, limits) for c in cases)))

    async def _run_case(self, a_d: dict, case: Case, limits: Limits) -> CaseOutcome:
        assert self._sem is not None and self._loop is not None
        async with self._sem:
            if self._dead:
                return sb.sandbox_failure(case.id, f"sandbox unavailable: {self._dead}")
            job_id = next(self._ids)
            backstop = limits.wall_s + self.backstop_s
            sup: _Supervisor | None = None
            acquire: asyncio.Future[_Supervisor | None] | None = None
            try:
                if not limits.network and self._idle:  # a prepared candidate is waiting: no task, no wait
                    sup = self._idle.popleft()
                else:
                    acquire = asyncio.ensure_future(self._acquire(limits.network))
                    done, _ = await asyncio.wait({acquire}, timeout=backstop)
                    if not done:
                        acquire.cancel()
                        return sb.sandbox_failure(case.id, f"no prepared sandbox within {backstop:g} s")
                    sup = acquire.result()
                if sup is None:
                    return sb.sandbox_failure(case.id, f"sandbox unavailable: {self._dead}")
                fut: asyncio.Future[CaseOutcome] = self._loop.create_future()
                sup.fut, sup.case_id = fut, case.id
                job_fd, sup.job_fd = sup.job_fd, -1
                try:
                    sb.start_job(job_fd, sup.sock.fileno(), job_id, a_d, case.to_dict(), limits)
                except OSError as e:
                    sup.fut = None
                    self._drop(sup, "")
                    return sb.sandbox_failure(case.id, f"sandbox supervisor unreachable: {e}")
                done, _ = await asyncio.wait({fut}, timeout=backstop)
                if not done:
                    _killpg(sup.pid)
                    sup.fut = None
                    return sb.sandbox_failure(
                        case.id, f"no result from the sandbox {backstop:g} s after start "
                                 f"(wall limit {limits.wall_s:g} s); supervisor and candidate killed")
                return fut.result()
            except asyncio.CancelledError:
                if acquire is not None and not acquire.done():
                    acquire.cancel()  # it hands on a supervisor it gets meanwhile
                elif acquire is not None and sup is None and not acquire.cancelled() and acquire.result() is not None:
                    self._offer(acquire.result())  # acquired as we were cancelled: unused
                if sup is not None and sup.fut is not None:
                    sup.fut = None
                    _killpg(sup.pid)
                raise

    async def _acquire(self, network: bool) -> _Supervisor | None:
        """A supervisor with a prepared candidate (None if the sandbox died meanwhile)."""
        assert self._loop is not None and self._ctl is not None
        if not network:
            if self._idle:  # a forgotten supervisor leaves this queue (see _detach)
                return self._idle.popleft()
        else:
            try:
                self._ctl.send(_NETWORK_REQUEST)
            except OSError as e:
                self._dead = self._dead or f"control socket to the zygote failed: {e}"
                return None
        waiter: asyncio.Future[_Supervisor | None] = self._loop.create_future()
        (self._net_waiting if network else self._waiting).append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                self._offer(waiter.result())  # handed to us as we were cancelled: pass it on
            raise

    def _offer(self, sup: _Supervisor) -> None:
        """A supervisor announced a prepared candidate: give it to the first job waiting, else keep it."""
        waiters = self._net_waiting if sup.network else self._waiting
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(sup)
                return
        if sup.network:
            self._drop(sup, "")  # its job was given up: closing its channel ends it
        else:
            self._idle.append(sup)

    def _attach_loop(self) -> None:
        """Register the control socket and every supervisor channel with the running loop."""
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        assert self._ctl is not None
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._ctl.fileno())
            for sup in self._sups.values():
                self._loop.remove_reader(sup.sock.fileno())
        self._waiting.clear()
        self._net_waiting.clear()
        self._loop, self._sem = loop, asyncio.Semaphore(self.workers)
        loop.add_reader(self._ctl.fileno(), self._on_ctl)
        for sup in self._sups.values():
            loop.add_reader(sup.sock.fileno(), self._on_channel, sup)

    def _on_ctl(self) -> None:
        assert self._ctl is not None
        try:
            data, fds = sb.recv_with_fds(self._ctl, 4096, 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, fds = b"", []
        if not data:  # the zygote is gone, and with it every supervisor
            for fd in fds:
                os.close(fd)
            if self._loop is not None:
                self._loop.remove_reader(self._ctl.fileno())
            self._dead = self._dead or "the sandbox zygote exited unexpectedly"
            self._fail_all(self._dead)
            return
        self._ctl_buf += data
        self._ctl_fds.extend(fds)
        while len(self._ctl_buf) >= _CTL.size:
            kind, pid, value = _CTL.unpack_from(self._ctl_buf)
            del self._ctl_buf[:_CTL.size]
            if kind == _NEW and self._ctl_fds:
                sup = _Supervisor(pid, self._ctl_fds.popleft(), bool(value))
                self._sups[pid] = sup
                if self._loop is not None:
                    self._loop.add_reader(sup.sock.fileno(), self._on_channel, sup)
            elif kind == _DIED:
                sup = self._sups.get(pid) or self._dying.pop(pid, None)
                if sup is not None:
                    self._drop(sup, f"sandbox supervisor died (wait status {value})")

    def _on_channel(self, sup: _Supervisor) -> None:
        try:
            events = sb.recv_from_supervisor(sup.sock, sup.stream)
        except (BlockingIOError, InterruptedError):
            return
        except (OSError, ValueError):
            events = None
        if events is None:  # the supervisor exited (one-shot, or it died)
            if sup.fut is not None and not sup.fut.done():
                self._detach(sup)
                self._dying[sup.pid] = sup  # the zygote will say how it ended
            else:
                self._drop(sup, "")
            return
        for kind, value in events:
            if kind == "outcome":
                fut, sup.fut = sup.fut, None
                if fut is not None and not fut.done() and not fut.get_loop().is_closed():
                    fut.set_result(self._decode(value, sup.case_id))
            elif sup.pid in self._sups:
                sup.job_fd = value
                self._offer(sup)
            elif value >= 0:
                os.close(value)

    @staticmethod
    def _decode(raw: bytes, case_id: str) -> CaseOutcome:
        try:
            return sb.decode_outcome(raw)
        except (ValueError, TypeError) as e:
            return sb.sandbox_failure(case_id, f"unreadable sandbox outcome: {type(e).__name__}: {e}")

    def _detach(self, sup: _Supervisor) -> None:
        """Forget a supervisor's channel (closing it, and the job pipe of its prepared candidate)."""
        if self._sups.get(sup.pid) is sup:
            del self._sups[sup.pid]
        try:
            self._idle.remove(sup)
        except ValueError:
            pass
        if sup.sock.fileno() >= 0:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sup.sock.fileno())
            sup.sock.close()
        if sup.job_fd >= 0:
            os.close(sup.job_fd)
            sup.job_fd = -1
        sup.stream.close()

    def _drop(self, sup: _Supervisor, why: str) -> None:
        """Forget a supervisor; a job still waiting on it fails with ``why``."""
        self._detach(sup)
        self._dying.pop(sup.pid, None)
        fut, sup.fut = sup.fut, None
        if fut is not None and not fut.done() and not fut.get_loop().is_closed():
            fut.set_result(sb.sandbox_failure(sup.case_id, why or "sandbox supervisor exited"))

    def _fail_all(self, why: str) -> None:
        for sup in [*self._sups.values(), *self._dying.values()]:
            fut, sup.fut = sup.fut, None
            if fut is not None and not fut.done() and not fut.get_loop().is_closed():
                fut.set_result(sb.sandbox_failure(sup.case_id, f"sandbox unavailable: {why}"))
        self._dying.clear()
        for waiter in [*self._waiting, *self._net_waiting]:
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(None)
        self._waiting.clear()
        self._net_waiting.clear()


def fork_unsafe_thread_pools() -> str:
    """A native thread pool in this process that does not survive ``fork`` ("" if none is known).

    numba's ``omp`` (GNU libgomp) and ``tbb`` threading layers, once launched, leave a forked child
    that hangs at its first parallel region; its ``workqueue`` layer and OpenBLAS handle fork.
    """
    par = sys.modules.get("numba.np.ufunc.parallel")
    if par is None or not getattr(par, "_is_initialized", False):
        return ""
    try:
        import numba

        layer = numba.threading_layer()
    except (ImportError, ValueError):
        return ""
    return f"numba's {layer} thread pool" if layer in ("omp", "tbb") else ""


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_pid(pid: int, timeout: float | None) -> bool:
    """Reap ``pid``; False if it is still running after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, 0 if deadline is None else os.WNOHANG)
        except ChildProcessError:
            return True
        if done:
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


# ---------------------------------------------------------------- zygote
def _zygote_main(task: Task, plan: iso.Plan, ctl: int, parent: int, slots: int,
                 mask: set[signal.Signals] | None = None) -> NoReturn:
    """Body of the zygote process. Never returns; exits when the engine goes away. ``mask``: the signal mask
    to restore once SIGINT is ignored (the parent forks with SIGINT blocked)."""
    zygote = None
    try:
        os.setsid()  # no terminal signals; the engine decides when we stop
        iso.prctl(iso.PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(0)
        iso.set_process_name("sl-zygote")
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, sb.raise_terminated)
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:
            pass
        keep = sorted({0, 1, 2, ctl})
        for lo, hi in zip(keep, [*keep[1:], resource.getrlimit(resource.RLIMIT_NOFILE)[0]], strict=True):
            os.closerange(lo + 1, hi)
        os.environ.clear()
        iso.scrub_environment_block()
        gc.freeze()  # inherited objects are never collected: fewer copy-on-write faults after fork
        zygote = _Zygote(task, plan, ctl, slots)
        zygote.loop()
    except (sb.Terminated, KeyboardInterrupt):
        pass
    finally:
        try:
            if zygote is not None:
                zygote.shutdown()
        finally:
            os._exit(0)


class _Zygote:
    """Keeps ``slots`` reusable supervisors alive and hands each one's channel to the engine.

    It is not on a job's path: the engine talks to the supervisors directly. On
    request it forks a one-shot supervisor outside the slots' empty network
    namespaces (``network=True`` jobs); it reaps every supervisor, tells the engine
    how each ended, and respawns the slots' ones.
    """

    def __init__(self, task: Task, plan: iso.Plan, ctl: int, slots: int) -> None:
        self.task, self.plan, self.target = task, plan, max(1, slots)
        self.ctl = socket.socket(fileno=ctl)
        self.kids: dict[int, tuple[bool, int]] = {}  # supervisor pid -> (one-shot with network?, pidfd or -1)

    def spawn(self, network: bool) -> None:
        pid, chan = sb.spawn_supervisor(self.task, self.plan, network=network, reuse=not network)
        try:
            pidfd = os.pidfd_open(pid)  # wakes the loop when it exits
        except (OSError, AttributeError):
            pidfd = -1
        self.kids[pid] = (network, pidfd)
        try:
            socket.send_fds(self.ctl, [_CTL.pack(_NEW, pid, int(network))], [chan])
        finally:
            os.close(chan)

    def loop(self) -> None:
        for _ in range(self.target):
            self.spawn(False)
        while True:
            pidfds = [fd for _, fd in self.kids.values() if fd >= 0]
            readable, _, _ = select.select([self.ctl, *pidfds], [], [], 0.2)
            if self.ctl in readable:
                data = self.ctl.recv(4096)
                if not data:
                    return
                for _ in range(data.count(_NETWORK_REQUEST)):
                    self.spawn(True)
            self.reap()

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            network, pidfd = self.kids.pop(pid, (True, -1))
            if pidfd >= 0:
                os.close(pidfd)
            self.ctl.sendall(_CTL.pack(_DIED, pid, status))
            if not network:
                self.spawn(False)  # keep the slot count

    def shutdown(self) -> None:
        """Every supervisor gets SIGTERM (it kills and reaps its candidate), then SIGKILL after 1 s."""
        for pid in self.kids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 1.0
        for pid in list(self.kids):
            if not _wait_pid(pid, max(0.0, deadline - time.monotonic())):
                _killpg(pid)
                _wait_pid(pid, None)
