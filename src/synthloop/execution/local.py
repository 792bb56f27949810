"""The local executor: sandboxed cases on this machine, forked from a warm zygote.

Processes::

    engine (asyncio) ──control pipe──▶ zygote ──fork──▶ supervisor ──fork──▶ candidate
          ▲                                                  │
          └──────────── notify pipe: "done <job>\\n" ◀────────┘

* ``start()`` forks the **zygote** before the engine starts threads or creates
  API clients. The zygote inherits the built task (warm caches included) and
  every pre-imported module, scrubs its environment, and stays single-threaded.
* The zygote forks ``workers`` long-lived **supervisors**; each always holds a
  prepared, locked-down candidate process (see :mod:`synthloop.execution.sandbox`)
  so forks, namespaces and privilege drop are off the critical path. The
  zygote routes each job to a ready supervisor; a candidate serves one job.
* The supervisor writes ``<jobroot>/<job>.out`` (JSON metadata + the raw JSON
  result; the job root is on /dev/shm where that tmpfs has room, see
  :func:`job_dir_base`) and a short notification; the engine parses JSON only — nothing a
  candidate produced is ever unpickled.
* Lifetime: the zygote gets SIGTERM when the engine dies (PR_SET_PDEATHSIG) and
  also exits on EOF of the control pipe; supervisors and candidates get SIGKILL
  when their parent dies; a candidate is PID 1 of its PID namespace, so its
  death takes every process it spawned with it. Nothing outlives the engine.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import itertools
import os
import resource
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
import warnings
from typing import NoReturn

from synthloop.core.task import Task
from synthloop.core.types import Artifact, Case
from synthloop.execution import isolation as iso
from synthloop.execution import sandbox as sb
from synthloop.execution.base import CaseOutcome, Executor, Limits

_HEAD = struct.Struct("!IBQB")  # payload length, kind, job id, network flag
_RUN, _KILL = 1, 2


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
        self._ctl_w = self._ntf_r = -1
        self._jobroot = ""
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future[CaseOutcome], str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore | None = None
        self._nbuf = b""
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
        _remove_stale_jobroots()
        self._jobroot = tempfile.mkdtemp(prefix=f"synthloop-jobs-{os.getpid()}-", dir=job_dir_base())
        ctl_r, ctl_w = os.pipe()
        ntf_r, ntf_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        parent = os.getpid()
        pid = iso.fork()
        if pid == 0:
            _zygote_main(self.task, self.plan, ctl_r, ntf_w, self._jobroot, parent, self.workers)
        os.close(ctl_r)
        os.close(ntf_w)
        os.set_blocking(ntf_r, False)
        self.zygote_pid, self._ctl_w, self._ntf_r, self._dead = pid, ctl_w, ntf_r, ""

    def close(self) -> None:
        """Stop the zygote; every supervisor and candidate is killed and reaped before this returns."""
        if not self.zygote_pid:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._ntf_r)
        os.close(self._ctl_w)  # EOF: the zygote terminates its supervisors, which kill their candidates
        if not _wait_pid(self.zygote_pid, 3.0):
            _killpg(self.zygote_pid)
            _wait_pid(self.zygote_pid, None)
        # every supervisor holds the notify pipe's write end: EOF means they are all gone
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._ntf_r], [], [], max(0.0, deadline - time.monotonic()))
            try:
                if ready and not os.read(self._ntf_r, 65536):
                    break
            except BlockingIOError:
                pass
        os.close(self._ntf_r)
        self._fail_all("executor closed")
        shutil.rmtree(self._jobroot, ignore_errors=True)
        self.zygote_pid, self._ctl_w, self._ntf_r = 0, -1, -1
        self._loop = self._sem = None

    # ------------------------------------------------------------ running
    async def run(self, artifact: Artifact, cases: list[Case], limits: Limits) -> list[CaseOutcome]:
        if not self.zygote_pid:
            raise RuntimeError("LocalExecutor.run() called before start()")
        self._attach_loop()
        a_d = artifact.to_dict()
        return list(await asyncio.gather(*(self._run_case(a_d, c, limits) for c in cases)))

    async def _run_case(self, a_d: dict, case: Case, limits: Limits) -> CaseOutcome:
        assert self._sem is not None and self._loop is not None
        async with self._sem:
            if self._dead:
                return sb.sandbox_failure(case.id, f"sandbox unavailable: {self._dead}")
            job_id = next(self._ids)
            out_path = os.path.join(self._jobroot, f"{job_id}.out")
            fut: asyncio.Future[CaseOutcome] = self._loop.create_future()
            self._pending[job_id] = (fut, case.id)
            try:
                self._send(_RUN, job_id, limits.network,
                           sb.encode_job(job_id, out_path, a_d, case.to_dict(), limits))
                backstop = limits.wall_s + self.backstop_s
                done, _ = await asyncio.wait({fut}, timeout=backstop)
                if not done:
                    self._send_quiet(_KILL, job_id)
                    return sb.sandbox_failure(
                        case.id, f"no result from the sandbox {backstop:g} s after start "
                                 f"(wall limit {limits.wall_s:g} s); supervisor and candidate killed")
                return fut.result()
            except asyncio.CancelledError:
                self._send_quiet(_KILL, job_id)
                raise
            except OSError as e:
                self._dead = self._dead or f"control pipe to the zygote failed: {e}"
                return sb.sandbox_failure(case.id, f"sandbox unavailable: {self._dead}")
            finally:
                self._pending.pop(job_id, None)
                try:
                    os.unlink(out_path)
                except FileNotFoundError:
                    pass

    def _send(self, kind: int, job_id: int, network: bool = False, payload: bytes = b"") -> None:
        sb.write_all(self._ctl_w, _HEAD.pack(len(payload), kind, job_id, network) + payload)

    def _send_quiet(self, kind: int, job_id: int) -> None:
        try:
            self._send(kind, job_id)
        except OSError:
            pass

    def _attach_loop(self) -> None:
        """Register the notify pipe with the running loop (re-registers if the loop changed)."""
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._ntf_r)
        self._loop, self._sem = loop, asyncio.Semaphore(self.workers)
        loop.add_reader(self._ntf_r, self._on_notify)

    def _on_notify(self) -> None:
        try:
            data = os.read(self._ntf_r, 65536)
        except BlockingIOError:
            return
        if not data:  # zygote and every supervisor are gone
            assert self._loop is not None
            self._loop.remove_reader(self._ntf_r)
            self._dead = self._dead or "the sandbox zygote exited unexpectedly"
            self._fail_all(self._dead)
            return
        *lines, self._nbuf = (self._nbuf + data).split(b"\n")
        for line in lines:
            kind, _, rest = line.decode().partition(" ")
            job_id, _, status = rest.partition(" ")
            entry = self._pending.get(int(job_id)) if job_id.isdigit() else None
            if entry is None or entry[0].done():
                continue
            fut, case_id = entry
            if kind == "done":
                fut.set_result(self._read_outcome(int(job_id), case_id))
            else:
                fut.set_result(sb.sandbox_failure(case_id, f"sandbox supervisor died (wait status {status})"))

    def _read_outcome(self, job_id: int, case_id: str) -> CaseOutcome:
        try:
            with open(os.path.join(self._jobroot, f"{job_id}.out"), "rb") as f:
                return sb.decode_outcome(f.read())
        except (OSError, ValueError, TypeError) as e:
            return sb.sandbox_failure(case_id, f"unreadable sandbox outcome: {type(e).__name__}: {e}")

    def _fail_all(self, why: str) -> None:
        for fut, case_id in list(self._pending.values()):
            if not fut.done() and not fut.get_loop().is_closed():
                fut.set_result(sb.sandbox_failure(case_id, f"sandbox unavailable: {why}"))


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


SHM = "/dev/shm"
SHM_MIN_FREE = 512 * iso.MIB


def job_dir_base(shm: str = SHM, mounts: str = "/proc/self/mounts") -> str | None:
    """Where the job outcome files go: a memory-backed tmpfs with room, else None (the temp directory).

    Every case writes one outcome file and the engine deletes it once read. On a disk file system that
    churn is not free: ext4 skips inodes deleted in the last minutes when it allocates new ones, so after
    a few thousand cases every file creation nearby (the run's artifacts too) cost ~0.7 ms instead of
    ~0.04 ms on the dev VM (``recently_deleted`` in the kernel profile). A tmpfs has no such cost.
    """
    try:
        with open(mounts) as f:
            tmpfs = any(ln.split()[1:3] == [shm, "tmpfs"] for ln in f if len(ln.split()) > 2)
        st = os.statvfs(shm)
    except OSError:
        return None
    if not tmpfs or st.f_bavail * st.f_frsize < SHM_MIN_FREE or not os.access(shm, os.W_OK | os.X_OK):
        return None
    return shm


def _remove_stale_jobroots() -> None:
    """Job directories of engines that died without cleaning up (their pid is in the name)."""
    for base in dict.fromkeys([tempfile.gettempdir(), SHM]):
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            parts = name.split("-")
            if name.startswith("synthloop-jobs-") and len(parts) == 4 and parts[2].isdigit():
                if not os.path.exists(f"/proc/{parts[2]}"):
                    shutil.rmtree(os.path.join(base, name), ignore_errors=True)


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
def _zygote_main(task: Task, plan: iso.Plan, ctl_r: int, ntf_w: int, jobroot: str, parent: int,
                 slots: int) -> NoReturn:
    """Body of the zygote process. Never returns; exits when the engine goes away."""
    zygote = None
    try:
        os.setsid()  # no terminal signals; the engine decides when we stop
        iso.prctl(iso.PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, sb.raise_terminated)
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:
            pass
        keep = sorted({0, 1, 2, ctl_r, ntf_w})
        for lo, hi in zip(keep, [*keep[1:], resource.getrlimit(resource.RLIMIT_NOFILE)[0]], strict=True):
            os.closerange(lo + 1, hi)
        os.environ.clear()
        iso.scrub_environment_block()
        gc.freeze()  # inherited objects are never collected: fewer copy-on-write faults after fork
        zygote = _Zygote(task, plan, ctl_r, ntf_w, slots)
        zygote.loop()
    except (sb.Terminated, KeyboardInterrupt):
        pass
    finally:
        try:
            if zygote is not None:
                zygote.shutdown()
            shutil.rmtree(jobroot, ignore_errors=True)
        finally:
            os._exit(0)


class _Zygote:
    """Keeps ``workers`` reusable supervisors, routes each job to a ready one, reaps and respawns.

    A supervisor says ``R`` on its channel when its next candidate is prepared;
    jobs wait in a queue only if none is ready. ``network=True`` jobs get a
    one-shot supervisor outside the slots' empty network namespaces.
    """

    def __init__(self, task: Task, plan: iso.Plan, ctl_r: int, ntf_w: int, slots: int) -> None:
        self.task, self.plan, self.ctl_r, self.ntf_w, self.target = task, plan, ctl_r, ntf_w, max(1, slots)
        self.chans: dict[int, int] = {}  # supervisor pid -> channel fd
        self.ready: list[int] = []  # supervisor pids with a prepared candidate
        self.running: dict[int, int] = {}  # supervisor pid -> job id
        self.by_job: dict[int, int] = {}  # job id -> supervisor pid
        self.queue: collections.deque[tuple[int, bytes]] = collections.deque()

    def spawn(self) -> None:
        pid, chan = sb.spawn_supervisor(self.task, self.plan, self.ntf_w, reuse=True)
        self.chans[pid] = chan

    def loop(self) -> None:
        buf = b""
        for _ in range(self.target):
            self.spawn()
        while True:
            fds = [self.ctl_r, *(c for c in self.chans.values() if c >= 0)]
            readable, _, _ = select.select(fds, [], [], 0.2)
            for fd in readable:
                if fd != self.ctl_r:
                    self.on_channel(fd)
            if self.ctl_r in readable:
                data = os.read(self.ctl_r, 1 << 20)
                if not data:
                    return
                buf += data
                while len(buf) >= _HEAD.size:
                    size, kind, job_id, network = _HEAD.unpack_from(buf)
                    if len(buf) < _HEAD.size + size:
                        break
                    payload, buf = buf[_HEAD.size:_HEAD.size + size], buf[_HEAD.size + size:]
                    if kind == _RUN and network:
                        pid, job_w = sb.spawn_supervisor(self.task, self.plan, self.ntf_w, network=True)
                        self.send(pid, job_w, job_id, payload)
                        os.close(job_w)
                    elif kind == _RUN:
                        self.queue.append((job_id, payload))
                    elif kind == _KILL and job_id in self.by_job:
                        _killpg(self.by_job[job_id])
                    elif kind == _KILL:  # still queued: drop it
                        self.queue = collections.deque(j for j in self.queue if j[0] != job_id)
            while self.queue and self.ready:
                pid = self.ready.pop()
                self.send(pid, self.chans[pid], *self.queue.popleft())
            self.reap()

    def on_channel(self, fd: int) -> None:
        pid = next(p for p, c in self.chans.items() if c == fd)
        try:
            data = os.read(fd, 64)
        except OSError:
            data = b""
        if not data:  # supervisor exiting; reap() respawns it
            os.close(self.chans.pop(pid))
            self.chans[pid] = -1
            if pid in self.ready:
                self.ready.remove(pid)
            return
        self.running.pop(pid, None)
        self.ready.extend([pid] * data.count(b"R"))

    def send(self, pid: int, chan: int, job_id: int, payload: bytes) -> None:
        try:
            sb.write_frame(chan, payload)
        except OSError:
            sb.write_all(self.ntf_w, f"dead {job_id} -1\n".encode())
            return
        self.running[pid] = job_id
        self.by_job = {j: p for j, p in self.by_job.items() if p != pid}
        self.by_job[job_id] = pid

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            job_id = self.running.pop(pid, None)
            if job_id is not None:
                self.by_job.pop(job_id, None)
                if status != 0:
                    sb.write_all(self.ntf_w, f"dead {job_id} {status}\n".encode())
            if pid in self.ready:
                self.ready.remove(pid)
            if pid in self.chans:
                chan = self.chans.pop(pid)
                if chan >= 0:
                    os.close(chan)
                self.spawn()  # keep the slot count

    def shutdown(self) -> None:
        """Idle supervisors get EOF, busy ones SIGTERM (they kill and reap their candidate)."""
        for chan in self.chans.values():
            if chan >= 0:
                os.close(chan)
        pids = set(self.chans) | set(self.running)
        for pid in self.running:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 1.0
        for pid in pids:
            if not _wait_pid(pid, max(0.0, deadline - time.monotonic())):
                _killpg(pid)
                _wait_pid(pid, None)
