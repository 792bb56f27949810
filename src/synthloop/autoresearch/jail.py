"""The external researcher's jail: what an agent CLI may see, write, reach and know.

An external researcher (``--researcher-cmd 'claude -p {prompt}'``) is an
arbitrary program with a shell. Unjailed it could read the inner runs'
``run.sqlite`` files (per-seed selection results), the ledger (held-out gate
values), the pipeline repository's history, or rewrite the harness's files.
Jailed (:class:`ResearcherJail`):

* **files**: the whole filesystem read-only (so the CLI, its runtime and
  ``/usr`` work), the workspace read-write, fresh private tmpfs on ``/tmp``,
  ``/var/tmp`` and ``/dev/shm``, an empty, read-only tmpfs over the run
  directory (at every path where its filesystem shows it, bind mounts
  included) and over any ``hide`` path, a private ``/dev`` without disks,
  ``/dev/null`` over the host's filesystem unix sockets (a read-only mount
  does not stop ``connect``: a container runtime's socket would be a way
  out), and extra read-only ``binds`` (a CLI or its config that lives under a
  hidden or scratch directory). Python installations under ``/tmp`` are bound
  back read-only automatically.
* **processes**: a PID namespace with its own ``/proc`` (the harness and its
  environment are invisible), no capability at all, even as uid 0
  (``no_new_privs``, empty bounding set, locked securebits), so no mount can
  be undone; the jail dies with the harness (``PR_SET_PDEATHSIG``), and at
  the end of the budget the whole tree is killed with PID 1 of the namespace.
* **network** (``network``): ``host`` (default: real coding agents need their
  LLM API; the agent shares the host's network, the evaluation service
  included) or ``none``: a network namespace whose loopback has the
  evaluation service on the same port (the listening socket is created
  inside the jail and handed to the harness, which serves on it), and
  nothing else.
* **environment**: only PATH, locale variables, TERM and TZ, a HOME inside
  the jail, ``SYNTHLOOP_SERVICE_URL``, ``SYNTHLOOP_SERVICE_TOKEN`` and the
  variables the user names (``env``, e.g. the agent's own API key); never
  the synthesizer's keys unless named.

Modes: ``namespace`` (Linux namespaces through our own launcher,
:mod:`synthloop.autoresearch.jailinit`: as root, or as a user with user
namespaces), ``bwrap`` (bubblewrap, when installed), ``auto`` (namespace if it
works here, else bwrap, else a one-line error) and ``none`` (no
confinement, only the environment allow-list and the process-tree kill;
recorded in the run meta and the report as unjailed).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

MODES = ("auto", "namespace", "bwrap", "none")
NETWORKS = ("host", "none")
ENV_BASE = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ")
RESERVED_ENV = ("HOME", "TMPDIR", "SYNTHLOOP_SERVICE_URL", "SYNTHLOOP_SERVICE_TOKEN")
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")
JAIL_HOME = "/tmp/home"
TMP_OPTIONS = "size=2g,mode=1777"
LAUNCHER_FILE = Path(__file__).with_name("jailinit.py")


class JailError(ValueError):
    """The jail cannot be had as asked: a configuration error (one line, exit status 2)."""


@dataclass(frozen=True)
class JailPolicy:
    """What the user asked for; :func:`resolve` turns ``auto`` into the mode this machine grants."""

    mode: str = "auto"
    network: str = "host"
    env: tuple[str, ...] = ()  # variable names passed through, e.g. ANTHROPIC_API_KEY
    binds: tuple[str, ...] = ()  # extra paths shown read-only
    hide: tuple[str, ...] = ()  # extra paths hidden (besides the run directory)

    def check(self) -> None:
        if self.mode not in MODES:
            raise JailError(f"unknown researcher jail {self.mode!r}; valid: {', '.join(MODES)}")
        if self.network not in NETWORKS:
            raise JailError(f"unknown researcher network {self.network!r}; valid: {', '.join(NETWORKS)}")
        for n in self.env:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n):
                raise JailError(f"--researcher-env expects a variable name, got {n!r}")
            if n in RESERVED_ENV:
                raise JailError(f"--researcher-env {n}: set by the harness; valid: any other variable name")
            if n not in os.environ:
                raise JailError(f"--researcher-env {n}: the variable is not set in this environment")
        for opt, paths in (("--researcher-bind", self.binds), ("--researcher-hide", self.hide)):
            for p in paths:
                if not os.path.isabs(p) or not os.path.exists(p):
                    raise JailError(f"{opt} {p!r}: not an existing absolute path")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JailPolicy:
        return cls(mode=d.get("mode", "auto"), network=d.get("network", "host"), env=tuple(d.get("env", ())),
                   binds=tuple(d.get("binds", ())), hide=tuple(d.get("hide", ())))


# ------------------------------------------------------------------ which mode this machine grants
def _launcher() -> tuple[list[str], dict[str, str]]:
    """The launcher's command and environment (it needs the synthloop package, nothing else)."""
    import synthloop

    src = str(Path(synthloop.__file__).resolve().parent.parent)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": src, "PYTHONDONTWRITEBYTECODE": "1"}
    # by file path: importing the synthloop.autoresearch package would start threads (no user namespace then)
    run = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"
    return [sys.executable, "-s", "-c", run, str(LAUNCHER_FILE)], env


_PROBED: dict[tuple[str, str, bool | None], str] = {}


def probe(mode: str, network: str = "host", userns: bool | None = None) -> str:
    """'' when ``mode`` ("namespace" or "bwrap") works on this machine, else why not (cached per process)."""
    key = (mode, network, userns)
    if key not in _PROBED:
        try:
            _PROBED[key] = _probe_namespace(network, userns) if mode == "namespace" else _probe_bwrap(network)
        except (OSError, subprocess.SubprocessError) as e:
            _PROBED[key] = f"{type(e).__name__}: {e}"
    return _PROBED[key]


def _probe_namespace(network: str, userns: bool | None = None) -> str:
    if not sys.platform.startswith("linux"):
        return "Linux namespaces are Linux-only"
    with tempfile.TemporaryDirectory(prefix="synthloop-jail-probe-") as d:
        ws = os.path.join(d, "ws")
        os.mkdir(ws)
        spec = _spec(mode="namespace", network=network, workspace=ws, hide=[d + "/hidden"], binds=[], argv=["true"],
                     env={}, port=None, handoff=None, userns=userns)
        os.mkdir(d + "/hidden")
        spec["probe"] = True
        cmd, env = _launcher()
        r = subprocess.run(cmd, input=json.dumps(spec).encode(), capture_output=True, timeout=60, env=env, cwd="/",
                           check=False)
    if r.returncode == 0:
        return ""
    lines = r.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"the launcher exited with status {r.returncode}"


def _probe_bwrap(network: str) -> str:
    exe = shutil.which("bwrap")
    if exe is None:
        return "bwrap is not installed"
    args = _bwrap_args(network, hide=[], binds=[], workspace="/")
    r = subprocess.run([exe, *args, "--", "true"], capture_output=True, timeout=60, check=False,
                       stdin=subprocess.DEVNULL)
    if r.returncode == 0:
        return ""
    lines = r.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"bwrap exited with status {r.returncode}"


def resolve(policy: JailPolicy) -> str:
    """The mode to use: "namespace", "bwrap" or "none"; :class:`JailError` when the requested one is unavailable."""
    policy.check()
    if policy.mode == "none":
        return "none"
    if policy.mode in ("namespace", "bwrap"):
        why = probe(policy.mode, policy.network)
        if why:
            raise JailError(f"--researcher-jail {policy.mode} is not available here: {why}; valid: auto, namespace,"
                            " bwrap, none")
        return policy.mode
    reasons = []
    for mode in ("namespace", "bwrap"):
        why = probe(mode, policy.network)
        if not why:
            return mode
        reasons.append(f"{mode}: {why}")
    raise JailError("no researcher jail is available here (" + "; ".join(reasons) + "); pass --researcher-jail none"
                    " to run the external researcher unjailed (recorded in the run and its report)")


# ------------------------------------------------------------------ what is hidden and shown
def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def _under(path: str, top: str) -> bool:
    return top == "/" or path == top or path.startswith(top.rstrip("/") + "/")


def aliases(path: str | Path) -> list[str]:
    """Every path where ``path``'s directory is visible: itself, and through any other mount of its filesystem."""
    real = os.path.realpath(path)
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mounts.append((fields[2], _unescape(fields[3]), _unescape(fields[4])))
    holders = [m for m in mounts if _under(real, m[2])]
    out = {real}
    if holders:
        dev, root, mp = max(enumerate(holders), key=lambda t: (len(t[1][2]), t[0]))[1]  # the top-most, deepest
        inner = os.path.normpath(os.path.join(root, os.path.relpath(real, mp)))
        for d, r, m in mounts:
            if d == dev and _under(inner, r):
                out.add(os.path.normpath(os.path.join(m, os.path.relpath(inner, r))))
    return sorted(p for p in out if os.path.isdir(p))


def _python_binds(hidden: list[str], forbidden: str) -> list[str]:
    """This Python's installation and import paths that a scratch tmpfs or a hidden path would cover (outermost
    only), so a Python agent (and the network-"none" helper) still runs; never one that holds the run directory."""
    wanted = {p for p in (*sys.path, sys.prefix, sys.exec_prefix, sys.base_prefix,
                          os.path.dirname(sys.executable)) if p and os.path.isdir(p)}  # '' (the cwd) is no install
    wanted |= {os.path.realpath(p) for p in wanted}
    wanted = {os.path.abspath(p) for p in wanted}
    covered = sorted(p for p in wanted if any(_under(p, t) for t in (*SCRATCH, *hidden))
                     and not _under(p, forbidden) and not _under(forbidden, p))
    return [p for p in covered if not any(q != p and _under(p, q) for q in covered)]


def unix_sockets(skip: list[str], shown: list[str] | None = None, limit: int = 20_000) -> list[str]:
    """Filesystem unix sockets a jailed agent could connect to (a read-only mount does not stop ``connect``):
    those this network namespace has bound (/proc/net/unix) and those under /run, e.g. a container runtime's
    or the system bus's. Each is covered by /dev/null in the jail. Those under ``skip`` or a scratch directory
    are hidden already; those the user shows (``shown``: binds) are left alone."""
    found: set[str] = set()
    with contextlib.suppress(OSError), open("/proc/net/unix") as f:
        next(f, None)
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and parts[7].startswith("/"):
                found.add(parts[7])
    seen = 0
    for top, dirs, files in os.walk("/run"):
        dirs[:] = [d for d in dirs if top.count("/") < 6]
        for name in files:
            found.add(os.path.join(top, name))
        seen += len(files) + len(dirs)
        if seen > limit:
            break
    out = set()
    for p in found:
        real = os.path.realpath(p)
        try:
            is_sock = stat.S_ISSOCK(os.lstat(real).st_mode)
        except OSError:
            continue
        if is_sock and not any(_under(real, t) for t in (*SCRATCH, *skip, *(shown or []))):
            out.add(real)
    return sorted(out)


def _spec(*, mode: str, network: str, workspace: str, hide: list[str], binds: list[str], argv: list[str],
          env: dict[str, str], port: int | None, handoff: int | None, userns: bool | None = None,
          sockets: list[str] | None = None) -> dict[str, Any]:
    userns = os.geteuid() != 0 if userns is None else userns
    return {"mode": mode, "parent": os.getpid(), "userns": userns, "network": network,
            "workspace": workspace, "cwd": workspace, "hide": hide, "binds": binds, "sockets": sockets or [],
            "home": JAIL_HOME,
            "tmp_options": TMP_OPTIONS, "argv": argv, "env": env, "port": port, "handoff": handoff}


def _bwrap_args(network: str, hide: list[str], binds: list[str], workspace: str,
                sockets: list[str] | None = None) -> list[str]:
    a = ["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    if network == "none":
        a.append("--unshare-net")
    a += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for t in SCRATCH:
        if os.path.isdir(t):
            a += ["--tmpfs", t]
    for h in hide:
        a += ["--tmpfs", h]
    for b in binds:
        a += ["--ro-bind", b, b]
    for sock in sockets or []:
        a += ["--ro-bind-try", "/dev/null", sock]
    if workspace != "/":
        a += ["--bind", workspace, workspace]
    for h in [*hide, "/dev"]:
        a += ["--remount-ro", h]
    a += ["--dir", JAIL_HOME]
    if os.geteuid() == 0:
        a += ["--cap-drop", "ALL"]
    return a


# ------------------------------------------------------------------ the jail
class ResearcherJail:
    """Starts the external researcher in the resolved mode; stops its whole process tree."""

    def __init__(self, policy: JailPolicy, mode: str, run_dir: Path, workspace: Path,
                 userns: bool | None = None) -> None:
        self.policy = policy
        self.mode = mode
        #: namespace mode inside a user namespace (default: exactly when not root; True tests that path as root)
        self.userns = userns
        self.run_dir = os.path.realpath(run_dir)
        self.workspace = os.path.realpath(workspace)
        self.hide: list[str] = []
        self.binds: list[str] = []
        self._home: str | None = None
        if mode != "none":
            self.hide = sorted({a for p in (self.run_dir, *policy.hide) for a in aliases(p)})
            binds = {os.path.realpath(b) for b in policy.binds}
            for b in sorted(binds):
                if _under(b, self.run_dir) or _under(self.run_dir, b):
                    raise JailError(f"--researcher-bind {b!r} would show the run directory; valid: paths outside"
                                    f" {self.run_dir}")
            self.binds = sorted(binds | set(_python_binds(self.hide, self.run_dir)))

    @property
    def jailed(self) -> bool:
        return self.mode != "none"

    def describe(self) -> dict[str, Any]:
        """What is recorded in the run meta and shown in the report."""
        return {"mode": self.mode, "requested": self.policy.mode, "jailed": self.jailed,
                "network": self.policy.network if self.jailed else "host (unjailed)", "env": list(self.policy.env),
                "binds": self.binds, "hidden": self.hide}

    def environment(self, url: str, token: str | None) -> dict[str, str]:
        """The researcher's whole environment: an allow-list, never the harness's other variables."""
        env = {k: os.environ[k] for k in ENV_BASE if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update({k: os.environ[k] for k in self.policy.env if k in os.environ})
        if self.jailed:
            env.update(HOME=JAIL_HOME, TMPDIR="/tmp")
        else:
            if self._home is None:
                self._home = tempfile.mkdtemp(prefix="synthloop-researcher-home-")
            env["HOME"] = self._home
        env["SYNTHLOOP_SERVICE_URL"] = url
        if token:
            env["SYNTHLOOP_SERVICE_TOKEN"] = token
        return env

    def start(self, argv: list[str], env: dict[str, str], log: IO[bytes], port: int | None = None,
              on_listen: Callable[[socket.socket], None] | None = None) -> subprocess.Popen[bytes]:
        """Start ``argv`` in the jail; with network "none", ``on_listen`` receives the jail's listening socket."""
        isolated_net = self.jailed and self.policy.network == "none"
        ours, theirs = socket.socketpair() if isolated_net else (None, None)
        fds = (theirs.fileno(),) if theirs is not None else ()
        try:
            if self.mode == "bwrap":
                exe = shutil.which("bwrap") or "bwrap"
                inner = argv
                if theirs is not None:
                    inner = [sys.executable, "-I", "-S", str(LAUNCHER_FILE), "--handoff", str(theirs.fileno()),
                             str(port), "--", *argv]
                cmd = [exe, *_bwrap_args(self.policy.network, self.hide, self.binds, self.workspace,
                                         unix_sockets(self.hide, self.binds)),
                       "--chdir", self.workspace, "--", *inner]
                proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        pass_fds=fds, start_new_session=True, cwd=self.workspace)
            else:
                spec = _spec(mode=self.mode, network=self.policy.network, workspace=self.workspace, hide=self.hide,
                             binds=self.binds, argv=argv, env=env, port=port,
                             handoff=theirs.fileno() if theirs is not None else None, userns=self.userns,
                             sockets=unix_sockets(self.hide, self.binds) if self.jailed else [])
                if not self.jailed:
                    spec["home"] = env["HOME"]
                cmd, lenv = _launcher()
                proc = subprocess.Popen(cmd, env=lenv, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                        pass_fds=fds, start_new_session=True, cwd="/")
                assert proc.stdin is not None
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write(json.dumps(spec).encode())
                proc.stdin.close()
            if ours is not None and theirs is not None:
                theirs.close()
                theirs = None
                ours.settimeout(60)
                try:
                    _, got, _, _ = socket.recv_fds(ours, 1, 1)
                except OSError:
                    got = []
                if got:
                    sock = socket.socket(fileno=got[0])
                    if on_listen is not None:
                        on_listen(sock)
                # else: the jail failed before listening; the launcher exits 125 with the reason in the log
            return proc
        finally:
            for s in (ours, theirs):
                if s is not None:
                    s.close()

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """Kill the researcher's whole process tree (descendants that left its session or group included)."""
        if proc.poll() is not None:
            return
        if self.mode != "bwrap":  # the launcher kills PID 1 of the namespace (or, unjailed, every descendant)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, 15)
            try:
                proc.wait(5)
                return
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):  # bwrap: its PID 1 dies with it (--die-with-parent)
            os.killpg(proc.pid, 9)
        proc.wait()

    def close(self) -> None:
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None
