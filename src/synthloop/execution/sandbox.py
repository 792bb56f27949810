"""Run one case of untrusted candidate code in a fresh, isolated process tree.

Process layout (shared by the local and the Ray executor)::

    caller (engine, via its zygote; or a Ray worker)
      └─ supervisor   trusted; own process group; enforces the wall clock, collects
         │            the result, sends the outcome to the caller;
         │            root: owns the slot's net + mount namespace (built once)
         └─ candidate setsid; PID 1 of a new PID namespace; the slot's net + mount
                      namespace (fresh scratch tmpfs each time); unprivileged uid;
                      rlimits; scrubbed env; runs ``task.run``

Why this shape: a process (not a thread) can always be killed; making the
candidate PID 1 of its own PID namespace means killing it kills everything it
spawned, even processes that called ``setsid`` (fork bombs are contained); the
supervisor is separate from the caller so that one ``fork`` gives a fresh,
disposable namespace owner and the caller never blocks on candidate code.

Speed: process creation is the cost (1.5-3 ms of CPU per fork+exit of a
Python process on a VM, and ~5 us per copy-on-write fault: every page either
side writes while they share memory), so (1) a supervisor is long-lived and
serves many jobs one after another (:func:`spawn_supervisor` with
``reuse=True``); (2) in root mode everything that need not be per process is
built once per slot (:class:`Slot`: mount namespace, environment, signal
dispositions, stdio objects) and only the scratch tmpfs mounts are renewed per
candidate; (3) it prepares the next candidate *before* its job is known: the
fork (:func:`~synthloop.execution.isolation.fork_bare`, without Python's
at-fork hooks), joining the namespaces and the privilege drop happen off the
critical path; (4) the caller writes the job straight into the prepared
candidate's pipe (the supervisor hands the pipe's write end over with its
ready notice), so a job wakes one process, not a chain of them; only the
per-job rlimits are applied before ``task.run``; (5) after sending its result
the candidate waits for its supervisor's SIGKILL, which comes once the outcome
is on its way (no interpreter teardown, and the ~2-3 ms of CPU its exit costs
no longer compete with the hand-off). Each candidate serves one job and is
destroyed, so every candidate still gets a fresh process.

Protocol on a supervisor's channel (a Unix stream socket to its caller)::

    supervisor → caller   b"R" + the candidate's job pipe (SCM_RIGHTS): a candidate is ready
                          b"r": none could be prepared (the job will get a setup failure)
                          b"O" + 8-byte length + outcome (JSON metadata line + raw result)
    caller → supervisor   frame(pickle((job_id, case_id, limits))): start the wall clock
    caller → candidate    frame(pickle((job_id, artifact, case, limits))) on the job pipe

What each level of isolation provides (and where network denial is not
possible) is documented in :mod:`synthloop.execution.isolation`.

Trust: jobs flow engine → candidate as pickles (trusted data); results flow
back as JSON bytes only, size-limited, and the engine never unpickles them.
"""

from __future__ import annotations

import array
import collections
import fcntl
import json
import math
import os
import pickle
import resource
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
import traceback
from typing import Any, NoReturn

from synthloop.core.task import Task
from synthloop.core.types import Artifact, Case
from synthloop.execution.base import CaseOutcome, Limits
from synthloop.execution.isolation import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    MIB,
    PR_SET_CHILD_SUBREAPER,
    PR_SET_PDEATHSIG,
    UID_BASE,
    Plan,
    apply_limits,
    check,
    count_own_processes,
    cpu_limit,
    enter_slot,
    fork,
    fork_bare,
    kill_tree,
    libc,
    lock_down,
    open_proc_files,
    prctl,
    prepare_slot_process,
    probe,
    proc_usage,
    reap_orphans,
    renew_scratch,
    set_process_name,
    slot_mount_namespace,
    unshare,
    write_id_maps,
)

__all__ = ["BACKSTOP_S", "Plan", "SupervisorStream", "Terminated", "decode_outcome", "encode_header", "encode_job",
           "probe", "raise_terminated", "read_frame", "recv_from_supervisor", "recv_with_fds", "run_case_raw",
           "run_case_sandboxed", "sandbox_failure", "spawn_supervisor", "start_job", "write_all", "write_frame"]

WORKDIR = "/tmp/work"  # the candidate's working directory where it has a private /tmp
BACKSTOP_S = 5.0  # caller-side grace beyond the wall limit before it kills a silent supervisor
# tags on the candidate → supervisor result pipe (first byte of a message)
_READY, _SETUP_FAILED = b"\x01", b"S"
_CANDIDATE_KINDS = {b"R": None, b"E": "exception", b"M": "memory", b"O": "output", b"X": "exit"}


class Terminated(Exception):
    """Raised in the supervisor by SIGTERM so it can kill its candidate before exiting."""


# ---------------------------------------------------------------- framing
def write_frame(fd: int, payload: bytes) -> None:
    write_all(fd, struct.pack("!I", len(payload)) + payload)


def read_frame(fd: int) -> bytes | None:
    """One length-prefixed frame from a blocking fd; None at EOF."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    return _read_exact(fd, struct.unpack("!I", head)[0])


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def encode_job(job_id: int, artifact_d: dict[str, Any], case_d: dict[str, Any], limits: Limits) -> bytes:
    """A job as the caller writes it into a prepared candidate's pipe (trusted data, so pickle is fine)."""
    return pickle.dumps((job_id, artifact_d, case_d, limits), protocol=pickle.HIGHEST_PROTOCOL)


def encode_header(job_id: int, case_id: str, limits: Limits) -> bytes:
    """What the supervisor of that candidate gets at the same time: which job, and its limits."""
    return pickle.dumps((job_id, case_id, limits), protocol=pickle.HIGHEST_PROTOCOL)


# supervisor → caller messages (first byte)
_MSG_READY, _MSG_NO_CANDIDATE, _MSG_OUTCOME = b"R", b"r", b"O"
_OUTCOME_HEAD = struct.Struct("!cQ")


class SupervisorStream:
    """Parses what a supervisor sends its caller, in order: ready notices and outcomes.

    ``feed(data, fds)`` takes what one ``recvmsg`` returned (a ready notice's pipe arrives as
    SCM_RIGHTS with its byte) and returns the complete messages: ``("ready", fd)`` with the
    prepared candidate's job pipe (``-1``: no candidate could be prepared) and
    ``("outcome", bytes)``. The supervisor is trusted; anything else is a protocol error.
    """

    def __init__(self) -> None:
        self.buf = bytearray()
        self.fds: collections.deque[int] = collections.deque()

    def feed(self, data: bytes, fds: list[int]) -> list[tuple[str, Any]]:
        self.buf += data
        self.fds.extend(fds)
        events: list[tuple[str, Any]] = []
        while self.buf:
            tag = bytes(self.buf[:1])
            if tag == _MSG_READY:
                events.append(("ready", self.fds.popleft() if self.fds else -1))
                del self.buf[:1]
            elif tag == _MSG_NO_CANDIDATE:
                events.append(("ready", -1))
                del self.buf[:1]
            elif tag == _MSG_OUTCOME:
                if len(self.buf) < _OUTCOME_HEAD.size:
                    break
                end = _OUTCOME_HEAD.size + _OUTCOME_HEAD.unpack_from(self.buf)[1]
                if len(self.buf) < end:
                    break
                events.append(("outcome", bytes(self.buf[_OUTCOME_HEAD.size:end])))
                del self.buf[:end]
            else:
                raise ValueError(f"malformed message from a sandbox supervisor (tag {tag!r})")
        return events

    def close(self) -> None:
        """Close pipes received but not handed out."""
        while self.fds:
            try:
                os.close(self.fds.popleft())
            except OSError:
                pass


# ---------------------------------------------------------------- candidate
def _address_space() -> int:
    with open("/proc/self/statm", "rb") as f:
        return os.sysconf("SC_PAGE_SIZE") * int(f.read().split()[0])


def _rehearse(job: bytes) -> None:
    """Walk the candidate's per-job code path once before the job arrives.

    Its first writes to shared pages are copy-on-write faults; taking them now
    moves them off the engine's critical path. Only what the job path itself
    runs (the rehearsal job was pickled by the supervisor), so that little
    extra memory is touched: ~15 faults more per candidate, ~0.3 ms less latency.
    """
    _, a_d, c_d, limits = pickle.loads(job)
    Artifact.from_dict(a_d), Case.from_dict(c_d)
    json.dumps([1, 2.5, "x", None, True, {"a": limits.wall_s}])


def _candidate_main(task: Task, slot: Slot, workdir: str, fds: tuple[int, ...], base_as: int) -> NoReturn:
    """Body of the candidate process: lock down, wait for the job, run ``task.run``, send JSON.

    Every page this process writes costs a copy-on-write fault, so the path is
    kept short: what can be prepared once per slot, the supervisor prepared.
    """
    try:
        set_process_name("sl-candidate")
        srcs = (slot.devnull if slot.devnull >= 0 else os.open("/dev/null", os.O_RDONLY), *fds)
        if slot.mnt >= 0:
            srcs = (*srcs, slot.mnt)
        if min(srcs) < len(srcs):  # move them up first, so that no dup2 below clobbers a source
            srcs = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD, len(srcs)) for fd in srcs)
        for dst, src in enumerate(srcs):
            os.dup2(src, dst)  # 1/2 stdout/stderr memfds, 3 result pipe, 4 job pipe, [5 slot mount ns]
        os.closerange(len(srcs), slot.nofile)  # everything else inherited
    except BaseException:  # noqa: BLE001
        os._exit(71)
    try:
        if slot.mnt >= 0:
            enter_slot(5, slot.uid, workdir, slot.stdio)
            nproc_base = 0
        else:
            lock_down(slot.plan, slot.uid, workdir)
            # shared-uid modes: RLIMIT_NPROC counts all of the user's processes, so allow ours + nproc
            nproc_base = 0 if slot.uid is not None else count_own_processes()
            base_as = _address_space()
        _rehearse(slot.rehearsal_job)
        job = read_frame(4)
        if job is None:
            os._exit(0)  # pair discarded before use
        os.close(4)
        _, artifact_d, case_d, limits = pickle.loads(job)
        apply_limits(limits, nproc_base, base_as)
        write_all(3, _READY)
    except BaseException as e:  # noqa: BLE001 - any setup failure is a sandbox failure
        write_all(3, _SETUP_FAILED + f"{type(e).__name__}: {e}".encode())
        os._exit(70)
    tag, payload = b"R", b""
    try:
        result = task.run(Artifact.from_dict(artifact_d), Case.from_dict(case_d))
        try:
            payload = json.dumps(result).encode()
        except BaseException as e:  # noqa: BLE001
            tag, payload = b"O", f"result is not JSON-serialisable: {type(e).__name__}: {e}".encode()
    except MemoryError:
        tag, payload = b"M", traceback.format_exc().encode("utf-8", "replace")
    except SystemExit as e:
        tag, payload = b"X", f"called sys.exit({e.code!r}) without producing a result".encode()
    except BaseException:  # noqa: BLE001
        tag, payload = b"E", traceback.format_exc().encode("utf-8", "replace")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    try:
        write_all(3, tag + payload)
        os.close(3)  # EOF tells the supervisor the result is complete
    except OSError:
        os._exit(0)
    # Wait for the supervisor's SIGKILL, which comes after it has sent the outcome. Exiting here would
    # unmap this copy of the engine's memory (~2-3 ms of CPU) while the result is being handed over.
    while True:
        signal.pause()


# ---------------------------------------------------------------- supervisor
def _read_stream(fd: int, limit: int) -> str:
    """Head and tail of a captured stream: the start shows context, the end the traceback."""
    size = os.fstat(fd).st_size
    if limit <= 0:
        return ""
    if size <= limit:
        text = os.pread(fd, size, 0).decode("utf-8", "replace")
        if len(text) <= limit:
            return text
    else:
        text = (os.pread(fd, limit, 0) + b"\n" + os.pread(fd, limit, size - limit)).decode("utf-8", "replace")
    half = limit // 2
    return f"{text[:half]}\n[... {size} bytes in total, truncated to {limit} chars ...]\n{text[-half:]}"


class Slot:
    """Supervisor-wide sandbox state, set up once per supervisor process.

    root/basic: the supervisor is reusable: one network namespace per slot (its
    candidates run one after another, so they cannot talk to each other), a
    fresh PID namespace per candidate (``unshare`` + ``setns`` back). root also
    builds one mount namespace per slot, which every candidate joins (new
    scratch tmpfs mounts each time), and prepares the environment and stdio
    objects its candidates inherit. userns: a
    PID namespace can only be made once inside the user namespace, so such a
    supervisor serves a single candidate.
    """

    def __init__(self, plan: Plan, network: bool) -> None:
        self.plan = plan
        self.reusable = plan.mode != "userns"
        self.uid = UID_BASE + os.getpid() if plan.mode == "root" else None
        net = CLONE_NEWNET if plan.netns and not network else 0
        # a SysV IPC / POSIX message queue namespace of the slot's own: nothing shared with the host
        # or other slots (optional: a kernel or seccomp profile may refuse it where it allows the rest)
        ipc = CLONE_NEWIPC if plan.netns else 0
        if plan.mode == "userns":
            real_uid, real_gid = os.getuid(), os.getgid()
            unshare(CLONE_NEWUSER | CLONE_NEWPID | net)
            write_id_maps(real_uid, real_gid)
        elif net:
            unshare(net)
        if ipc:
            try:
                unshare(ipc)
            except OSError:
                ipc = 0
        if not plan.pidns:
            prctl(PR_SET_CHILD_SUBREAPER, 1)
        self.nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        #: root: the slot's mount namespace (read-only root etc., built once) that every candidate
        #: joins, and the per-process state they inherit (see isolation.prepare_slot_process)
        self.mnt = self.host_mnt = self.devnull = -1
        self.scratch: tuple[str, ...] = ()
        self.stdio: tuple = ()
        if plan.mode == "root" and plan.mountns and plan.pidns:
            self.mnt, self.scratch = slot_mount_namespace(plan)
            self.host_mnt = os.open("/proc/self/ns/mnt", os.O_RDONLY)
            self.devnull = os.open("/dev/null", os.O_RDONLY)
            self.stdio = prepare_slot_process(plan, WORKDIR)
        self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY) if plan.mode == "root" else -1
        self.rehearsal_job = encode_job(0, Artifact("").to_dict(), Case("", "feedback").to_dict(), Limits())
        self.iso: dict[str, Any] = {
            "mode": plan.mode, "netns": bool(net), "ipcns": bool(ipc), "pidns": plan.pidns, "mountns": plan.mountns,
            "rootfs_readonly": plan.rootfs_ro and plan.mountns,
            "uid": self.uid if self.uid is not None else os.getuid(),
        }


class Pair:
    """One prepared candidate process, seen from its supervisor."""

    def __init__(self, task: Task, slot: Slot) -> None:
        plan = self.plan = slot.plan
        self.iso = slot.iso
        self.workdir = WORKDIR if plan.mountns else tempfile.mkdtemp(prefix="synthloop-case-")
        if slot.uid is not None and not plan.mountns:
            os.chown(self.workdir, slot.uid, slot.uid)
        self.out_fd, self.err_fd = os.memfd_create("stdout", 0), os.memfd_create("stderr", 0)
        self.res_r, res_w = os.pipe()
        job_r, self.job_w = os.pipe()
        base_as = 0
        if slot.mnt >= 0:
            assert slot.uid is not None
            renew_scratch(plan, slot.mnt, slot.host_mnt, slot.scratch, self.workdir, slot.uid)
            base_as = _address_space()  # what the candidate maps: a copy of this process
        if slot.own_pidns >= 0:
            unshare(CLONE_NEWPID)  # the next child is PID 1 of a fresh namespace
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # no Terminated mid-fork
        try:
            self.pid = fork_bare()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            raise
        if self.pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        else:  # the candidate unblocks SIGTERM itself, after resetting its handlers
            _candidate_main(task, slot, self.workdir, (self.out_fd, self.err_fd, res_w, job_r), base_as)
        if slot.own_pidns >= 0:
            check(libc.setns(slot.own_pidns, CLONE_NEWPID), "setns(pid)")
        os.close(res_w)
        os.close(job_r)
        os.set_blocking(self.res_r, False)
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except (OSError, AttributeError):
            self.pidfd = -1
        self.proc = open_proc_files(self.pid)  # read when the result arrives, before the candidate is reaped

    def rehearse(self) -> None:
        """Walk the supervisor's per-job code path once before the job arrives.

        While the candidate shares this process's memory, the first write to each
        page costs a copy-on-write fault; the job path would take mostly the same
        ones, so taking them now costs little extra (~30 faults, ~0.2 ms of CPU)
        and keeps them off the engine's critical path (~0.4 ms less latency).
        """
        meta: dict[str, Any] = {"stdout": _read_stream(self.out_fd, 10), "isolation": self.iso}
        proc_usage(self.pid, self.proc)
        encode_outcome(meta, _classify(meta, _READY + b"R1", 0, False, False, 0.0, Limits()))
        pickle.loads(encode_header(0, "", Limits()))

    def hand_over(self) -> int:
        """The write end of the candidate's job pipe, for the caller; this process keeps no copy."""
        fd, self.job_w = self.job_w, -1
        return fd

    def supervise(self, case_id: str, limits: Limits) -> tuple[dict[str, Any], bytes]:
        """Supervise the candidate, whose job the caller has written to its pipe; (meta, result)."""
        t0 = time.perf_counter()
        if self.job_w >= 0:  # not handed over: nobody will write a job, the candidate sees EOF
            os.close(self.hand_over())
        cap = limits.result_mb * MIB + 2 * MIB  # + room for a traceback
        buf = bytearray()
        timed_out = too_big = finished = False
        status, cpu, rss = 0, 0.0, 0.0
        deadline = t0 + limits.wall_s
        pipe_open = True
        try:
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    timed_out = True
                    break
                watch = ([self.res_r] if pipe_open else []) + ([self.pidfd] if self.pidfd >= 0 else [])
                ready, _, _ = select.select(watch, [], [], left if self.pidfd >= 0 else min(left, 0.005))
                if self.res_r in ready:
                    pipe_open = _drain(self.res_r, buf, cap)
                    if len(buf) > cap:
                        too_big = True
                        break
                    if not pipe_open and buf[:1] == _READY and len(buf) > 1:
                        finished = True  # complete result: report now, reap afterwards
                        done, status, ru = os.wait4(self.pid, os.WNOHANG)
                        if done:
                            cpu, rss = ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024
                            self.pid = 0
                        else:
                            cpu, rss = proc_usage(self.pid, self.proc)
                        break
                if self.pidfd in ready or self.pidfd < 0:
                    done, status, ru = os.wait4(self.pid, 0 if self.pidfd >= 0 else os.WNOHANG)
                    if done:
                        cpu, rss = ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024
                        self.pid = 0
                        break
        except Terminated:
            self.destroy()
            raise
        wall = time.perf_counter() - t0
        if self.pid and not finished:
            kill_tree(self.pid)
            _, status, ru = os.wait4(self.pid, 0)
            cpu, rss = ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024
            self.pid = 0
        if not too_big:
            _drain(self.res_r, buf, cap)
            too_big = len(buf) > cap
        meta: dict[str, Any] = {
            "case_id": case_id, "ok": False, "error_kind": None, "error": "",
            "stdout": _read_stream(self.out_fd, limits.output_chars),
            "stderr": _read_stream(self.err_fd, limits.output_chars),
            "wall_s": round(wall, 6), "cpu_s": round(cpu, 6), "max_rss_mb": round(rss, 3), "isolation": self.iso,
        }
        result = _classify(meta, bytes(buf), status, timed_out, too_big, cpu, limits)
        return meta, result

    def destroy(self) -> None:
        """Kill the candidate tree and reap it (the PID namespace dies with its PID 1); free fds."""
        if self.pid:
            kill_tree(self.pid)
            try:
                os.wait4(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = 0
        if not self.plan.pidns:
            reap_orphans()
        if not self.plan.mountns:
            shutil.rmtree(self.workdir, ignore_errors=True)
        for fd in (self.out_fd, self.err_fd, self.res_r, self.job_w, self.pidfd, *self.proc):
            try:
                os.close(fd)
            except OSError:
                pass
        self.out_fd = self.err_fd = self.res_r = self.job_w = self.pidfd = -1
        self.proc = (-1, -1, -1)


def _drain(fd: int, buf: bytearray, cap: int) -> bool:
    """Read what is available; False at EOF. Stops once ``cap`` is exceeded."""
    while len(buf) <= cap:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        buf += chunk
    return True


def _classify(meta: dict[str, Any], data: bytes, status: int, timed_out: bool, too_big: bool,
              cpu_used: float, limits: Limits) -> bytes:
    """Fill ``meta``'s ok/error_kind/error from how the candidate ended; return the raw result."""
    cpu_lim = cpu_limit(limits)
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0

    def fail(kind: str, msg: str) -> bytes:
        meta.update(error_kind=kind, error=msg)
        return b""

    if timed_out:
        return fail("timeout", f"timed out after {limits.wall_s:g} s wall; process tree killed")
    if too_big:
        return fail("output", f"result exceeds the {limits.result_mb} MB limit; process tree killed")
    # RLIMIT_CPU kills with SIGKILL (see apply_limits); rusage can read a little under the limit
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_used >= 0.9 * math.ceil(cpu_lim)):
        return fail("cpu", f"CPU time limit exceeded ({cpu_used:.1f} s used, limit {cpu_lim:g} s); "
                           "process tree killed")
    if sig == signal.SIGKILL:
        return fail("memory", "killed by SIGKILL (most likely the out-of-memory killer)")
    if sig:
        return fail("crash", f"crashed with {signal.Signals(sig).name} ({signal.strsignal(sig)})")
    if data.startswith(_SETUP_FAILED):
        return fail("sandbox", "sandbox setup failed: " + data[1:2000].decode("utf-8", "replace"))
    if not data.startswith(_READY) or len(data) < 2:
        return fail("exit", f"exited with status {os.WEXITSTATUS(status)} without producing a result")
    tag, body = data[1:2], data[2:]
    if tag not in _CANDIDATE_KINDS:
        return fail("output", "malformed result from the candidate process")
    kind = _CANDIDATE_KINDS[tag]
    if kind is None:
        meta["ok"] = True
        return body
    text = body.decode("utf-8", "replace")
    if kind == "exception":
        text = f"{text.strip().splitlines()[-1] if text.strip() else 'unknown error'}\n{text}"
    elif kind == "memory":
        text = f"MemoryError: out of memory ({limits.memory_mb} MB address-space limit)\n{text}"
    return fail(kind, text)


def decode_outcome(raw: bytes) -> CaseOutcome:
    """Turn an encoded outcome (JSON metadata line + raw candidate JSON) into a CaseOutcome.

    Runs in the engine: only ``json.loads`` touches candidate-produced bytes.
    """
    head, _, body = raw.partition(b"\n")
    out = CaseOutcome(**json.loads(head))
    if out.ok:
        try:
            out.output = json.loads(body)
        except (ValueError, RecursionError) as e:
            out.ok, out.error_kind = False, "output"
            out.error = f"result is not valid JSON: {type(e).__name__}: {str(e)[:200]}"
    return out


def encode_outcome(meta: dict[str, Any], result: bytes) -> bytes:
    return json.dumps(meta).encode() + b"\n" + result


def sandbox_failure(case_id: str, msg: str) -> CaseOutcome:
    return CaseOutcome(case_id=case_id, ok=False, error_kind="sandbox", error=msg)


def raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def jit_cache_saves_best_effort() -> None:
    """Let numba load its on-disk cache in candidates but never fail on saving to it.

    A dispatcher declared with ``cache=True`` picks its cache directory when it is
    created: in the engine, where the source tree is writable. A candidate that
    compiles a new specialisation then saves next to the source, which the sandbox
    mounts read-only (or owns by another uid): EROFS/EACCES in the middle of an
    episode. The compiled code is in memory either way, so a failed save is dropped.
    Only numba imported before the fork needs this; one imported later chooses a
    writable directory itself.
    """
    caching = sys.modules.get("numba.core.caching")
    if caching is None or getattr(caching.Cache.save_overload, "_synthloop_best_effort", False):
        return
    save = caching.Cache.save_overload

    def save_overload(self: Any, sig: Any, data: Any) -> None:
        try:
            save(self, sig, data)
        except OSError:
            pass

    save_overload._synthloop_best_effort = True  # type: ignore[attr-defined]
    caching.Cache.save_overload = save_overload


def _supervisor_main(task: Task, plan: Plan, network: bool, chan: int, parent: int, reuse: bool) -> NoReturn:
    """Body of a supervisor: prepare a candidate, hand its job pipe to the caller, supervise its job, repeat.

    ``chan`` is a stream socket to the caller (see the protocol in the module docstring): per
    candidate, a ready notice with the job pipe goes out, a job header comes in, the outcome goes
    out. The used candidate is torn down *after* that, off the caller's critical path. One job
    only unless ``reuse`` (and the isolation mode allows reuse).
    """
    code = 1
    pair: Pair | None = None
    try:
        os.setpgid(0, 0)
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)
        set_process_name("sl-supervisor")
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, raise_terminated)
        jit_cache_saves_best_effort()
        keep = sorted({0, 1, 2, chan})  # drop the caller's channels to other supervisors
        for lo, hi in zip(keep, [*keep[1:], resource.getrlimit(resource.RLIMIT_NOFILE)[0]], strict=True):
            os.closerange(lo + 1, hi)
        sock = socket.socket(fileno=chan)
        setup_error = ""
        try:
            slot = Slot(plan, network)
        except OSError as e:
            setup_error, reuse = f"sandbox setup failed: {e}", False
        while True:
            if not setup_error:
                try:
                    pair = Pair(task, slot)
                    pair.rehearse()
                except OSError as e:
                    setup_error, reuse = f"sandbox setup failed: {e}", False
                    if pair is not None:
                        pair.destroy()
                        pair = None
            if pair is not None:
                job_w = pair.hand_over()
                try:
                    socket.send_fds(sock, [_MSG_READY], [job_w])
                finally:
                    os.close(job_w)
            else:
                write_all(chan, _MSG_NO_CANDIDATE)
            header = read_frame(chan)
            if header is None:
                raise Terminated()
            _, case_id, limits = pickle.loads(header)
            if pair is None:
                data = encode_outcome(sandbox_failure(case_id, setup_error).to_dict(), b"")
            else:
                data = encode_outcome(*pair.supervise(case_id, limits))
            write_all(chan, _OUTCOME_HEAD.pack(_MSG_OUTCOME, len(data)) + data)
            if pair is not None:
                pair.destroy()
                pair = None
            if not (reuse and slot.reusable):
                break
        code = 0
    except Terminated:
        pass
    finally:
        try:
            if pair is not None:
                pair.destroy()
        finally:
            os._exit(code)


def spawn_supervisor(task: Task, plan: Plan, network: bool = False, reuse: bool = False) -> tuple[int, int]:
    """Fork a supervisor; returns its pid (also its process group) and our end of its channel (a Unix socket).

    See the protocol in the module docstring. ``reuse=False``: one job, then it exits.
    """
    theirs, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    chan, mine = theirs.detach(), ours.detach()
    parent = os.getpid()
    pid = fork()
    if pid == 0:
        try:
            os.close(mine)
        finally:
            _supervisor_main(task, plan, network, chan, parent, reuse)
    os.close(chan)
    return pid, mine


def recv_with_fds(sock: socket.socket, size: int, max_fds: int) -> tuple[bytes, list[int]]:
    """``recvmsg`` with any file descriptors passed along (SCM_RIGHTS), received close-on-exec."""
    fds = array.array("i")
    data, ancillary, _, _ = sock.recvmsg(size, socket.CMSG_SPACE(max_fds * fds.itemsize), socket.MSG_CMSG_CLOEXEC)
    for level, kind, blob in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(blob[:len(blob) - len(blob) % fds.itemsize])
    return data, list(fds)


def recv_from_supervisor(sock: socket.socket, stream: SupervisorStream) -> list[tuple[str, Any]] | None:
    """Read what is available on a supervisor's channel; its complete messages, or None at EOF."""
    data, fds = recv_with_fds(sock, 1 << 20, 4)
    if not data:
        for fd in fds:
            os.close(fd)
        return None
    return stream.feed(data, fds)


def start_job(job_fd: int, chan: int, job_id: int, artifact_d: dict[str, Any], case_d: dict[str, Any],
              limits: Limits) -> None:
    """Give a job to a prepared candidate (its pipe; closed here) and to its supervisor (the header).

    A candidate that is already gone (setup failed) shows up in the outcome, not here. Raises
    OSError when the supervisor's channel is broken.
    """
    if job_fd >= 0:
        try:
            write_frame(job_fd, encode_job(job_id, artifact_d, case_d, limits))
        except OSError:
            pass
        finally:
            os.close(job_fd)
    write_frame(chan, encode_header(job_id, str(case_d.get("id")), limits))


def run_case_sandboxed(task: Task, artifact: Artifact | dict[str, Any], case: Case | dict[str, Any],
                       limits: Limits, plan: Plan | None = None) -> CaseOutcome:
    """Blocking: run one case in a fresh supervisor + candidate forked from this process."""
    return decode_outcome(run_case_raw(task, artifact, case, limits, plan))


def run_case_raw(task: Task, artifact: Artifact | dict[str, Any], case: Case | dict[str, Any],
                 limits: Limits, plan: Plan | None = None) -> bytes:
    """Like :func:`run_case_sandboxed` but returns the encoded outcome (bytes cross Ray's wire)."""
    a_d = artifact.to_dict() if isinstance(artifact, Artifact) else artifact
    c_d = case.to_dict() if isinstance(case, Case) else case
    plan = plan or probe()
    pid, chan = spawn_supervisor(task, plan, limits.network)
    sock = socket.socket(fileno=chan)
    stream = SupervisorStream()
    deadline = time.monotonic() + limits.wall_s + BACKSTOP_S  # preparing the candidate counts too
    why = "no result within the backstop"
    try:
        started = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                os.killpg(pid, signal.SIGKILL)
                break
            events = recv_from_supervisor(sock, stream)
            if events is None:
                why = "the supervisor exited without an outcome"
                break
            for kind, value in events:
                if kind == "ready" and not started:
                    started = True
                    try:
                        start_job(value, chan, 0, a_d, c_d, limits)
                    except OSError as e:
                        why = f"the supervisor's channel broke: {e}"
                elif kind == "outcome":
                    return value
    finally:
        stream.close()
        sock.close()
        _, status = os.waitpid(pid, 0)
    return encode_outcome(sandbox_failure(str(c_d.get("id")),
                                          f"sandbox failed: {why} (status {status})").to_dict(), b"")
