"""The external researcher's jail launcher (the harness side is :mod:`synthloop.autoresearch.jail`).

Run by the harness by file path (never through the ``synthloop.autoresearch``
package, whose imports start threads) with its spec (JSON) on stdin: a fresh,
single-threaded interpreter, so nothing of the harness's memory
(API clients, keys, the ledger connection) is inherited by any process the
researcher can reach, and no namespace is created inside the multi-threaded
harness. Exit status: the agent's (128+N when a signal ended it), 125 when
the jail could not be set up, 127 when the command could not be executed.

Spec modes:

* ``namespace``: unshare mount, PID, IPC and UTS namespaces (and the network
  one for network ``none``), inside a user namespace when not root; make every
  inherited mount read-only; a private ``/dev`` (null, zero, full, random,
  urandom, tty only: no disks), fresh tmpfs on ``/tmp``, ``/var/tmp`` and
  ``/dev/shm``; a read-only, empty tmpfs over every hidden path (the run
  directory, wherever it is visible); ``/dev/null`` over every listed unix
  socket (a container runtime's, the system bus); the workspace bound back read-write and
  the extra paths read-only. Then fork PID 1 of the new PID namespace, which
  mounts a private ``/proc`` (no host process visible: not the harness, whose
  environment holds the synthesizer's key), drops every capability for good
  (bounding set, ambient set, securebits locked, ``no_new_privs``, so not even
  uid 0 regains any on exec, and no mount can be undone) and forks the agent.
  When PID 1 exits, the kernel kills every process left in the namespace.
* ``none``: no confinement (recorded as unjailed); a child subreaper that
  kills every descendant when told to stop or when the agent exits.
* ``probe``: a spec with ``"probe": true`` builds everything, then exits 0
  from PID 1 instead of running anything.

``--handoff FD PORT -- ARGV`` is the network-``none`` helper used inside
bubblewrap: it brings up the namespace's loopback, listens on
127.0.0.1:PORT, passes that listening socket to the harness through FD (the
evaluation service then serves on it) and executes ARGV. This path uses the
standard library only, so it runs by file path inside any jail.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import socket
import stat
import struct
import sys
from typing import Any

SETUP_FAILED = 125
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")
CLONE_NEWUTS = 0x04000000
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_CAP_AMBIENT = 4, 24, 28, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
#: NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, each locked, and KEEP_CAPS off and locked
SECUREBITS = 0b11101111
MOUNT_ATTR_RDONLY = 1
AT_RECURSIVE = 0x8000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 1


def _fail(msg: str) -> None:
    print(f"researcher jail: {msg}", file=sys.stderr, flush=True)
    os._exit(SETUP_FAILED)


def _code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


# ------------------------------------------------------------------ network "none": loopback and handoff
def lo_up() -> None:
    """Bring up the loopback interface of a fresh network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def handoff(fd: int, port: int) -> None:
    """Listen on 127.0.0.1:port in this network namespace and pass the socket to the harness over ``fd``."""
    with socket.socket(fileno=fd) as chan, socket.socket(socket.AF_INET, socket.SOCK_STREAM) as ls:
        ls.bind(("127.0.0.1", port))
        ls.listen(64)
        socket.send_fds(chan, [b"L"], [ls.fileno()])


# ------------------------------------------------------------------ the agent
def _exec_agent(spec: dict[str, Any]) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    argv = spec["argv"]
    try:
        os.chdir(spec["cwd"])
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as e:
        print(f"researcher jail: cannot run {argv[0]!r}: {e.strerror}", file=sys.stderr, flush=True)
    os._exit(127)


# ------------------------------------------------------------------ namespace mode
def _setattr(path: str, set_: int, clr: int, recursive: bool) -> None:
    """``mount_setattr(2)`` on the mount at ``path`` (no other flag needs restating, unlike a remount)."""
    from synthloop.execution import isolation as iso

    if iso._SYS_MOUNT_SETATTR is None:
        raise OSError(0, "mount_setattr is not available on this architecture")
    attr = (ctypes.c_uint64 * 4)(set_, clr, 0, 0)
    if iso.libc.syscall(iso._SYS_MOUNT_SETATTR, -100, path.encode(), AT_RECURSIVE if recursive else 0,
                        ctypes.byref(attr), 32) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount_setattr {path}: {os.strerror(err)}")


def _mountpoint(path: str, is_dir: bool) -> None:
    if os.path.lexists(path):
        return
    if is_dir:
        os.makedirs(path, 0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def _build(spec: dict[str, Any]) -> None:
    """Namespaces and the filesystem view (in the launcher, which is outside the new PID namespace)."""
    from synthloop.execution import isolation as iso

    uid, gid = os.getuid(), os.getgid()
    flags = iso.CLONE_NEWNS | iso.CLONE_NEWPID | iso.CLONE_NEWIPC | CLONE_NEWUTS
    if spec["network"] == "none":
        flags |= iso.CLONE_NEWNET
    if spec["userns"]:
        flags |= iso.CLONE_NEWUSER
    iso.unshare(flags)
    if spec["userns"]:
        iso.write_id_maps(uid, gid)
    iso.mount("none", "/", None, iso.MS_REC | iso.MS_PRIVATE)  # nothing mounted here reaches the host
    # what is shown again is opened before anything is hidden: (path, O_PATH fd, is_dir, writable)
    keep = []
    for path, rw in [*((p, False) for p in spec["binds"]), (spec["workspace"], True)]:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        keep.append((path, fd, stat.S_ISDIR(os.fstat(fd).st_mode), rw))
    devs = [(n, os.open(f"/dev/{n}", os.O_PATH | os.O_CLOEXEC)) for n in DEV_NODES if os.path.exists(f"/dev/{n}")]
    if not iso.readonly_root():
        raise OSError(ctypes.get_errno(), "cannot make the filesystem read-only (mount_setattr)")
    iso.mount("tmpfs", "/dev", "tmpfs", iso.MS_NOSUID | iso.MS_NOEXEC, "size=64k,mode=0755")
    for name, fd in devs:
        _mountpoint(f"/dev/{name}", False)
        iso.mount(f"/proc/self/fd/{fd}", f"/dev/{name}", None, iso.MS_BIND)
        os.close(fd)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"/dev/{name}")
    os.mkdir("/dev/shm", 0o1777)
    for target in SCRATCH:
        if os.path.isdir(target):
            iso.mount("tmpfs", target, "tmpfs", iso.MS_NOSUID | iso.MS_NODEV, spec["tmp_options"])
    for h in spec["hide"]:
        _mountpoint(h, True)  # already there, unless it lay under a scratch directory
        iso.mount("tmpfs", h, "tmpfs", iso.MS_NOSUID | iso.MS_NODEV | iso.MS_NOEXEC, "size=1m,mode=0755")
    for sock in spec.get("sockets", []):  # a read-only mount does not stop connect(): cover each socket
        if stat.S_ISSOCK(os.lstat(sock).st_mode if os.path.lexists(sock) else 0):
            iso.mount("/dev/null", sock, None, iso.MS_BIND)
    for path, fd, is_dir, rw in keep:
        _mountpoint(path, is_dir)
        iso.mount(f"/proc/self/fd/{fd}", path, None, iso.MS_BIND | iso.MS_REC)
        os.close(fd)
        if rw:
            _setattr(path, 0, MOUNT_ATTR_RDONLY, False)
        else:
            _setattr(path, MOUNT_ATTR_RDONLY, 0, True)
    for h in [*spec["hide"], "/dev"]:
        _setattr(h, MOUNT_ATTR_RDONLY, 0, False)  # the mounts stacked inside keep their own flags
    os.makedirs(spec["home"], 0o700, exist_ok=True)


def _drop_privileges() -> None:
    """No capability now or after any exec, even as uid 0; this process is not even ptrace-able."""
    from synthloop.execution import isolation as iso

    iso.prctl(PR_SET_SECUREBITS, SECUREBITS)
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        iso.prctl(PR_CAPBSET_DROP, cap)
    iso.check(iso.libc.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0), "ambient")
    iso.drop_capabilities()
    iso.prctl(iso.PR_SET_NO_NEW_PRIVS, 1)
    iso.prctl(PR_SET_DUMPABLE, 0)


def _init(spec: dict[str, Any]) -> None:
    """PID 1 of the jail's PID namespace: private /proc, no capabilities, then the agent; reaps orphans."""
    from synthloop.execution import isolation as iso

    try:
        iso.prctl(iso.PR_SET_PDEATHSIG, signal.SIGKILL)
        iso.mount("proc", "/proc", "proc", iso.MS_NOSUID | iso.MS_NODEV | iso.MS_NOEXEC)
        _drop_privileges()
    except OSError as e:
        _fail(str(e))
    if spec.get("probe"):
        os._exit(0)
    pid = os.fork()
    if pid == 0:
        _exec_agent(spec)
    while True:
        try:
            p, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if p == pid:
            os._exit(_code(status))  # the kernel kills whatever else is left in the namespace


def _namespace(spec: dict[str, Any]) -> None:
    from synthloop.execution import isolation as iso

    try:
        _build(spec)
        if spec["network"] == "none":
            lo_up()
            if spec.get("handoff") is not None:
                handoff(spec["handoff"], spec["port"])
    except OSError as e:
        _fail(str(e))
    pid = os.fork()
    if pid == 0:
        _init(spec)

    def stop(*_: Any) -> None:
        iso.kill_tree(pid)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    _, status = os.waitpid(pid, 0)
    os._exit(_code(status))


# ------------------------------------------------------------------ no confinement
def _plain(spec: dict[str, Any]) -> None:
    from synthloop.execution import isolation as iso

    iso.prctl(iso.PR_SET_CHILD_SUBREAPER, 1)  # orphans of the agent become ours, so a stop reaches them
    os.makedirs(spec["home"], 0o700, exist_ok=True)
    if spec.get("probe"):
        os._exit(0)
    pid = os.fork()
    if pid == 0:
        iso.prctl(iso.PR_SET_PDEATHSIG, signal.SIGKILL)
        _exec_agent(spec)

    def stop(*_: Any) -> None:
        iso.reap_orphans()  # SIGKILL every child (the agent, then re-parented orphans) until none is left
        os._exit(128 + signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    while True:
        p, status = os.wait()
        if p == pid:
            break
    iso.reap_orphans()  # whatever the agent left running
    os._exit(_code(status))


def main(argv: list[str]) -> None:
    if argv[:1] == ["--handoff"]:  # inside bubblewrap, network "none"
        fd, port, rest = int(argv[1]), int(argv[2]), argv[argv.index("--") + 1:]
        try:
            handoff(fd, port)
        except OSError as e:
            _fail(f"cannot listen on 127.0.0.1:{port}: {e}")
        try:
            os.execvp(rest[0], rest)
        except OSError as e:
            print(f"researcher jail: cannot run {rest[0]!r}: {e.strerror}", file=sys.stderr, flush=True)
        os._exit(127)
    spec = json.loads(sys.stdin.buffer.read())
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # the agent gets no input
    os.close(null)
    from synthloop.execution import isolation as iso

    iso.prctl(iso.PR_SET_PDEATHSIG, signal.SIGKILL)  # the harness dies (even SIGKILL): so does the jail
    if os.getppid() != spec["parent"]:
        _fail("the harness is gone")
    if spec["mode"] == "namespace":
        _namespace(spec)
    else:
        _plain(spec)


if __name__ == "__main__":
    main(sys.argv[1:])
