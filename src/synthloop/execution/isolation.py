"""OS-level isolation for candidate processes: namespaces, mounts, credentials, rlimits.

Everything here is plain Linux system calls (through libc via ctypes: Python
3.10/3.11 have no ``os.unshare``); :mod:`synthloop.execution.sandbox` decides
*when* each step runs.

Isolation levels (probed once per process by :func:`probe`, recorded per case
in ``CaseOutcome.isolation``):

* ``root`` (running as root, e.g. CI and containers with CAP_SYS_ADMIN): a
  network namespace with no interfaces but a down loopback (no network), a new
  PID namespace per candidate (the candidate is PID 1: killing it kills all it
  spawned, ``setsid`` or not), a mount namespace per worker slot (built once by
  :func:`slot_mount_namespace`) with the whole filesystem read-only, a
  ``hidepid=invisible`` ``/proc`` (host processes invisible to the slot's uid)
  and a tmpfs on ``/tmp``, ``/var/tmp`` and ``/dev/shm`` that is replaced by a
  new, empty one before every candidate (:func:`renew_scratch`), and an
  unprivileged per-slot uid/gid (``RLIMIT_NPROC`` then limits that slot alone;
  files readable only by root, such as ``/root`` or ``/proc/<engine>/environ``,
  are out of reach).
  Python import paths under a 0700 directory (a venv in ``/root``) are bound
  back read-only so the candidate can still import.
* ``userns`` (an unprivileged user with user namespaces enabled, most desktop
  Linux): the same namespaces inside an unprivileged user namespace (a mount
  namespace and private ``/proc`` per candidate, as each supervisor serves one). The
  candidate keeps the caller's uid (only one uid can be mapped), so it can
  *read* that user's files; every capability is dropped after the mounts.
* ``basic`` (no namespaces allowed, e.g. a seccomp profile that blocks
  ``unshare``): **network access cannot be denied, and files outside the work
  directory that the user may write are writable.** The candidate still gets
  its own session, rlimits and a scrubbed environment; its supervisor is a child
  subreaper that kills the process group and every orphaned descendant.
  macOS and Windows are not supported.

Secrets: a candidate never sees the engine's environment: ``os.environ`` is
replaced by an allow-list and the original environment block is zeroed in
memory (so ``/proc/self/environ`` is empty too). Because candidates are forked,
whatever else was in the engine's *memory* when the zygote was forked is
inherited; the local executor therefore forks its zygote in ``start()``, which
must run before API clients are created.

``Limits.memory_mb`` is applied as address space *on top of* what the
pre-imported parent already maps (a forked Ray worker maps gigabytes of virtual
memory it never touches; an absolute ``RLIMIT_AS`` would make every allocation
fail).
"""

from __future__ import annotations

import ctypes
import io
import math
import os
import platform
import resource
import signal
import sys
import threading
import warnings
from dataclasses import dataclass

from synthloop.execution.base import Limits

libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
CLONE_NEWIPC = 0x08000000
PR_SET_PDEATHSIG, PR_SET_NAME, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 15, 36, 38
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 0x1000, 0x4000, 1 << 18
MS_REMOUNT = 32
MNT_DETACH = 2
TMPFS_OPTIONS = "size=256m,nr_inodes=16384,mode=1777"  # the candidate's private /tmp, /var/tmp, /dev/shm
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")  # each gets a fresh, empty tmpfs per candidate
_SYS_MOUNT_SETATTR = 442 if platform.machine() in ("x86_64", "aarch64") else None
UID_BASE = 2_000_000_000  # per-slot uid = UID_BASE + supervisor pid: unique among live supervisors
MIB = 1 << 20
_ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONHASHSEED", "PYTHONPATH")
_ENV_ALLOW_PREFIX = ("OMP_", "MKL_", "OPENBLAS_", "NUMBA_")


def check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def prctl(option: int, arg: int) -> None:
    check(libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl({option})")


def set_process_name(name: str) -> None:
    """What ``ps``, ``top`` and ``perf`` show for this process (15 bytes at most); best effort."""
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


def unshare(flags: int) -> None:
    """``unshare(2)`` through libc (``os.unshare`` only exists from Python 3.12)."""
    check(libc.unshare(ctypes.c_int(flags)), f"unshare({flags:#x})")


def mount(src: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    check(
        libc.mount(src.encode(), target.encode(), fstype.encode() if fstype else None,
                    ctypes.c_ulong(flags), data.encode() if data else None),
        f"mount {target}",
    )


def umount(target: str) -> bool:
    """Lazily detach the top-most mount at ``target``; False if there was none (or it failed)."""
    return libc.umount2(target.encode(), ctypes.c_int(MNT_DETACH)) == 0


def setns(fd: int, nstype: int) -> None:
    check(libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), f"setns({nstype:#x})")


def readonly_root() -> bool:
    """Make every inherited mount read-only at once (mount_setattr, Linux >= 5.12)."""
    if _SYS_MOUNT_SETATTR is None:
        return False
    attr = (ctypes.c_uint64 * 4)(MS_RDONLY, 0, 0, 0)  # struct mount_attr {set, clr, propagation, userns_fd}
    return libc.syscall(_SYS_MOUNT_SETATTR, -100, b"/", 0x8000, ctypes.byref(attr), 32) == 0


def drop_capabilities() -> None:
    hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    check(libc.capset(ctypes.byref(hdr), ctypes.byref(data)), "capset")


def scrub_environment_block() -> None:
    """Zero the process's original environment strings (what /proc/PID/environ shows)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end (fields 50, 51)
        if 0 < start < end:
            ctypes.memset(start, 0, end - start)
    except (OSError, ValueError, IndexError):
        pass


def safe_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The allow-listed part of an environment: nothing that can hold a credential."""
    src = os.environ if base is None else base
    return {k: v for k, v in src.items() if k in _ENV_ALLOW or k.startswith(_ENV_ALLOW_PREFIX)}


@dataclass(frozen=True)
class Plan:
    """What isolation this process can grant; probed once per process (see :func:`probe`)."""

    mode: str  # "root" | "userns" | "basic"
    netns: bool
    pidns: bool
    mountns: bool
    rootfs_ro: bool = False
    env: tuple[tuple[str, str], ...] = ()
    #: import paths hidden from the unprivileged uid by a 0700 ancestor (e.g. a venv in
    #: /root): (ancestor, paths) – the ancestor is masked by a tmpfs and the paths bound back
    binds: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: import paths that live under a scratch directory (a checkout or venv in /tmp): the candidate's fresh
    #: scratch tmpfs would hide them, so they are bound back read-only into every new scratch mount
    scratch_binds: tuple[str, ...] = ()


def _probe_child(mode: str) -> int:
    """Try the namespace setup of ``mode`` in a throwaway child: 0 works, 2 works without a read-only root."""
    pid = fork()
    if pid == 0:
        try:
            if mode == "root":
                unshare(CLONE_NEWNET | CLONE_NEWPID)
            else:
                uid, gid = os.getuid(), os.getgid()
                unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID)
                write_id_maps(uid, gid)
            inner = os.fork()
            if inner == 0:
                try:
                    unshare(CLONE_NEWNS)
                    mount("none", "/", None, MS_REC | MS_PRIVATE)
                    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m")
                    os._exit(0 if readonly_root() else 2)
                except BaseException:
                    os._exit(1)
            os._exit(os.waitstatus_to_exitcode(os.waitpid(inner, 0)[1]))
        except BaseException:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


_PLAN: Plan | None = None


def probe(mode: str = "auto") -> Plan:
    """Decide the isolation level for this process (cached; ``mode`` forces one for tests)."""
    global _PLAN
    if mode == "auto" and _PLAN is not None:
        return _PLAN
    env = tuple(sorted(safe_environment().items()))
    ro = False
    if mode == "auto":
        mode = "basic"
        for candidate in (["root"] if os.geteuid() == 0 else []) + ["userns"]:
            code = _probe_child(candidate)
            if code in (0, 2):
                mode, ro = candidate, code == 0
                break
    elif mode != "basic":
        ro = _probe_child(mode) == 0
    full = mode != "basic"
    binds = _import_binds() if mode == "root" else ()
    plan = Plan(mode=mode, netns=full, pidns=full, mountns=full, rootfs_ro=ro, env=env, binds=binds,
                scratch_binds=_scratch_import_paths() if full else ())
    if _PLAN is None:
        _PLAN = plan
    return plan


def _import_binds() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Python import paths an unprivileged uid could not reach, grouped by the blocking ancestor."""
    wanted = {p for p in (*sys.path, sys.prefix, sys.exec_prefix, sys.base_prefix) if p and os.path.isdir(p)}
    wanted |= {os.path.realpath(p) for p in wanted}
    groups: dict[str, set[str]] = {}
    for p in sorted(wanted):
        parts = os.path.abspath(p).split("/")[1:]
        for i in range(1, len(parts)):  # strict ancestors of p, top down
            anc = "/" + "/".join(parts[:i])
            try:
                if not os.stat(anc).st_mode & 0o001:
                    groups.setdefault(anc, set()).add(os.path.abspath(p))
                    break
            except OSError:
                break
    out = []
    for anc, paths in sorted(groups.items()):
        tops = [p for p in sorted(paths) if not any(p.startswith(q + "/") for q in paths if q != p)]
        out.append((anc, tuple(tops)))
    return tuple(out)


def _scratch_import_paths() -> tuple[str, ...]:
    """Import paths (sys.path, prefixes) under /tmp, /var/tmp or /dev/shm, outermost only."""
    wanted = {os.path.abspath(p) for p in (*sys.path, sys.prefix, sys.exec_prefix, sys.base_prefix)
              if p and os.path.isdir(p)}
    wanted |= {os.path.realpath(p) for p in wanted}
    under = sorted(p for p in wanted if any(p.startswith(t + "/") for t in SCRATCH))
    return tuple(p for p in under if not any(p.startswith(q + "/") for q in under if q != p))


#: per slot mount namespace (keyed by its fd): O_PATH fds to the scratch import paths, opened inside that
#: namespace before its first scratch tmpfs covered them (a bind source must be a mount of the same namespace)
_SCRATCH_FDS: dict[int, list[int]] = {}


def open_scratch_binds(plan: Plan) -> list[int]:
    """O_PATH fds to the scratch import paths; call in the new mount namespace, before the tmpfs mounts."""
    return [os.open(p, os.O_PATH | os.O_DIRECTORY) for p in plan.scratch_binds]


def bind_scratch_imports(plan: Plan, fds: list[int]) -> None:
    """After a fresh scratch tmpfs is mounted: bind the import paths back into it, read-only."""
    for p, fd in zip(plan.scratch_binds, fds, strict=True):
        os.makedirs(p, 0o755, exist_ok=True)
        mount(f"/proc/self/fd/{fd}", p, None, MS_BIND | MS_REC)
        mount("none", p, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def write_id_maps(uid: int, gid: int) -> None:
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")


def fork() -> int:
    """``os.fork`` without the 3.12+ multi-threaded DeprecationWarning (Ray workers have threads)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def fork_bare() -> int:
    """``fork(2)`` through libc, without Python's at-fork machinery; for a single-threaded caller.

    ``os.fork`` runs ``PyOS_AfterFork_Child`` and every registered at-fork hook in
    the child: threading's alone writes ~150 pages, each a copy-on-write fault
    (~5 us on a VM), which made it the largest single cost of a candidate. In a
    single-threaded process those hooks only reset state that is already
    consistent (no other thread can hold a lock). The one whose effect matters,
    ``random``'s reseed, is done here before forking, so each child still gets a
    fresh seed. glibc's own fork handlers (``pthread_atfork``) still run. Falls
    back to ``os.fork`` when other threads exist.
    """
    if threading.active_count() != 1:
        return fork()
    rnd = sys.modules.get("random")
    if rnd is not None:
        rnd.seed()
    pid = libc.fork()
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"fork: {os.strerror(err)}")
    return pid


def count_own_processes() -> int:
    uid, n = os.getuid(), 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                n += os.stat(f"/proc/{name}").st_uid == uid
            except OSError:
                pass
    return n


def _confine_filesystem(plan: Plan) -> None:
    """In a fresh mount namespace: private propagation, import binds, read-only root."""
    mount("none", "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks to the host
    for masked, paths in plan.binds:  # let the unprivileged uid import from e.g. /root/.venv
        srcs = [os.open(os.path.realpath(p), os.O_PATH | os.O_DIRECTORY) for p in paths]
        mount("tmpfs", masked, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
        for p, fd in zip(paths, srcs, strict=True):
            os.makedirs(p, 0o755, exist_ok=True)
            mount(f"/proc/self/fd/{fd}", p, None, MS_BIND | MS_REC)
            os.close(fd)
    if plan.rootfs_ro and not readonly_root():
        raise OSError(ctypes.get_errno(), "mount_setattr(/, RDONLY) failed")


def slot_mount_namespace(plan: Plan) -> tuple[int, tuple[str, ...]]:
    """root mode: build a worker slot's mount namespace once; (an fd to ``setns`` into, scratch dirs).

    The namespace has the read-only root and import binds of :func:`lock_down`,
    a ``hidepid=invisible`` /proc (a process of the slot's unprivileged uid sees
    only its own processes: every host process, the engine included, is
    invisible) and a tmpfs on each scratch directory, which
    :func:`renew_scratch` replaces by a new, empty one before every candidate.
    The caller itself stays in the mount namespace it was in.
    """
    host = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    try:
        unshare(CLONE_NEWNS)
        try:
            _confine_filesystem(plan)
            fds = open_scratch_binds(plan)
            scratch = tuple(t for t in SCRATCH if os.path.isdir(t))
            for target in scratch:
                mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, TMPFS_OPTIONS)
            bind_scratch_imports(plan, fds)
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible")
            mnt = os.open("/proc/self/ns/mnt", os.O_RDONLY)
            _SCRATCH_FDS[mnt] = fds
            return mnt, scratch
        finally:
            setns(host, CLONE_NEWNS)  # back; this also sets root and cwd to the host's /
    finally:
        os.close(host)


def renew_scratch(plan: Plan, slot_mnt: int, host_mnt: int, scratch: tuple[str, ...], workdir: str,
                  uid: int) -> None:
    """Give the slot's next candidate new, empty scratch tmpfs mounts and a fresh working directory.

    Runs in the (root) supervisor once the previous candidate's PID namespace
    is gone, so no process of it can still hold or write the old mounts, which
    are detached (lazily) and freed. Should a detach fail, the new mount still
    covers the old one; a failed mount raises.
    """
    setns(slot_mnt, CLONE_NEWNS)
    try:
        for target in scratch:
            umount(target)  # lazily detaches the old tmpfs with the import binds stacked in it
            mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, TMPFS_OPTIONS)
        bind_scratch_imports(plan, _SCRATCH_FDS.get(slot_mnt, []))
        os.mkdir(workdir, 0o700)
        os.chown(workdir, uid, uid)
    finally:
        setns(host_mnt, CLONE_NEWNS)


def enter_slot(slot_mnt: int, uid: int, workdir: str, stdio: tuple) -> None:
    """root mode, in a new candidate: the job-independent confinement that is per process.

    Everything per slot (network namespace, mount namespace, environment,
    signal dispositions, ``no_new_privs``, stdio objects) was prepared once by
    the supervisor (:func:`prepare_slot_process`) and is inherited; this joins
    the slot's mount namespace, drops to the slot's uid and arms the
    parent-death signal.
    """
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the supervisor's handler
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())  # the supervisor blocks SIGTERM around fork
    setns(slot_mnt, CLONE_NEWNS)  # read-only root, fresh scratch tmpfs, hidepid /proc
    os.close(slot_mnt)
    os.setgroups([])  # an unprivileged uid: drops every capability
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    # after the uid change, which clears it. Should the supervisor die before this, the job pipe
    # reads EOF and the candidate exits before running anything.
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.chdir(workdir)
    sys.stdin, sys.stdout, sys.stderr = stdio
    sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr


def prepare_slot_process(plan: Plan, workdir: str) -> tuple:
    """root mode, in a supervisor: the per-process state its candidates inherit; returns their stdio.

    Mirrors :func:`lock_down`: environment allow-list (and the original block
    zeroed), signal dispositions, no wakeup fd, ``no_new_privs`` (the
    supervisor never executes anything), no bytecode writing.
    """
    set_environment(plan, workdir, "/tmp")
    for sig in (signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over RLIMIT_FSIZE: writes fail with EFBIG, no kill
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    sys.dont_write_bytecode = True
    return (open(0, closefd=False),  # noqa: SIM115 - fds 0-2 are the candidate's /dev/null and memfds
            io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace"),
            io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace"))


def set_environment(plan: Plan, workdir: str, tmpdir: str) -> None:
    """Replace the environment by the allow-list and zero the original block (/proc/PID/environ)."""
    os.environ.clear()  # also clears posix.environ (same dict) and the libc environ array
    scrub_environment_block()
    os.environ.update(dict(plan.env))
    os.environ.update(HOME=workdir, TMPDIR=tmpdir, USER="sandbox", PYTHONDONTWRITEBYTECODE="1")


def lock_down(plan: Plan, uid: int | None, workdir: str) -> None:
    """Job-independent confinement in the candidate, done before the job is known; order matters.

    userns and basic modes (root mode uses a prepared slot: :func:`enter_slot`).
    """
    os.setsid()
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over RLIMIT_FSIZE: writes fail with EFBIG, no kill
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    if plan.mountns:
        unshare(CLONE_NEWNS)
        _confine_filesystem(plan)
        fds = open_scratch_binds(plan)
        for target in SCRATCH:
            if os.path.isdir(target):
                mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, TMPFS_OPTIONS)
        bind_scratch_imports(plan, fds)
        for fd in fds:
            os.close(fd)
        if plan.pidns:
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # host PIDs invisible
        os.mkdir(workdir, 0o700)
        if uid is not None:
            os.chown(workdir, uid, uid)
    set_environment(plan, workdir, "/tmp" if plan.mountns else workdir)
    if uid is not None:  # root mode: become an unprivileged, per-case uid (drops all capabilities)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    elif plan.mode == "userns":
        drop_capabilities()
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # again: credential changes clear it
    os.chdir(workdir)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace")
    sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr
    sys.dont_write_bytecode = True  # the filesystem is read-only anyway


def apply_limits(limits: Limits, nproc_base: int, base_as: int) -> None:
    """Per-job rlimits (lowering needs no privilege, so this runs after the uid drop)."""
    cpu = cpu_limit(limits)
    nproc = nproc_base + limits.nproc
    # soft == hard everywhere. For RLIMIT_CPU that means SIGKILL at the limit: the candidate is
    # PID 1 of its namespace, and PID 1 ignores a SIGXCPU it has no handler for.
    for res, value in ((resource.RLIMIT_CORE, 0), (resource.RLIMIT_FSIZE, limits.fsize_mb * MIB),
                       (resource.RLIMIT_CPU, math.ceil(cpu)), (resource.RLIMIT_NPROC, nproc),
                       (resource.RLIMIT_AS, base_as + limits.memory_mb * MIB)):
        resource.setrlimit(res, (value, value))


def cpu_limit(limits: Limits) -> float:
    return max(1.0, limits.cpu_s if limits.cpu_s is not None else math.ceil(limits.wall_s) + 1)


def kill_tree(pid: int) -> None:
    """Kill the candidate and its process group (with a PID namespace, killing PID 1 kills all)."""
    for kill in (os.kill, os.killpg):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def children() -> list[int]:
    """Our live child processes (via /proc: CONFIG_PROC_CHILDREN is not always built in)."""
    me, kids = str(os.getpid()), []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[1].decode() == me:
                        kids.append(int(name))
            except (OSError, IndexError):
                pass
    return kids


def reap_orphans() -> None:
    """basic mode: SIGKILL every descendant re-parented to us (we are a child subreaper)."""
    for _ in range(1000):
        kids = children()
        if not kids:
            return
        for k in kids:
            kill_tree(k)
        for k in kids:
            try:
                os.waitpid(k, 0)
            except ChildProcessError:
                pass


def open_proc_files(pid: int) -> tuple[int, int, int]:
    """``/proc/<pid>``'s stat, schedstat and status, opened once so that each reading is a ``pread``."""
    fds: list[int] = []
    try:
        for name in ("stat", "schedstat", "status"):
            fds.append(os.open(f"/proc/{pid}/{name}", os.O_RDONLY | os.O_CLOEXEC))
    except OSError:
        for fd in fds:
            os.close(fd)
        return (-1, -1, -1)
    return (fds[0], fds[1], fds[2])


def proc_usage(pid: int, files: tuple[int, int, int] | None = None) -> tuple[float, float]:
    """CPU seconds (all threads, incl. reaped children) and peak RSS MB of a still running process.

    ``schedstat`` is exact (ns) but counts the main thread only; ``stat``'s utime + stime count
    every thread, in clock ticks: the larger of the two, plus reaped children (cutime + cstime).
    ``files`` (from :func:`open_proc_files`) saves opening the three files on a critical path.
    """
    if files is not None and files[0] >= 0:
        return _read_usage(files)
    files = open_proc_files(pid)
    try:
        return _read_usage(files)
    finally:
        for fd in files:
            if fd >= 0:
                os.close(fd)


def _read_usage(files: tuple[int, int, int]) -> tuple[float, float]:
    try:
        fields = os.pread(files[0], 4096, 0).rsplit(b")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        cpu = max(int(os.pread(files[1], 256, 0).split()[0]) / 1e9, sum(int(x) for x in fields[11:13]) / tick)
        cpu += sum(int(x) for x in fields[13:15]) / tick
        rss = 0.0
        for line in os.pread(files[2], 8192, 0).splitlines():
            if line.startswith(b"VmHWM:"):
                rss = int(line.split()[1]) / 1024
        return cpu, rss
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0
