"""The run lock: which process, if any, is executing a run directory right now.

A process that executes a run holds an exclusive POSIX record lock
(``fcntl.lockf``) on ``run.lock`` in the run directory until it ends. Two
properties of that kind of lock make it the evidence ``show`` needs:

* the kernel drops it when the process dies, however it dies (``kill -9``
  included), so "the database says running but nobody holds the lock" means
  the run died without recording an end: it is *stale*, not running;
* it is not inherited by ``fork``, so the sandbox's zygote and workers, which
  may outlive a killed engine for a moment, never keep a dead run "alive".

The catch of POSIX locks is that closing *any* descriptor of the file in the
holding process releases the lock; this module is the only code that opens
``run.lock``, and a process never probes a lock it holds (see ``_HELD``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

LOCK_FILE = "run.lock"

#: lock files this process holds (a probe from the holder would release its own POSIX lock)
_HELD: set[str] = set()


class RunInUse(Exception):
    """Another live process is executing this run (one line for the user)."""


def _key(run_dir: Path) -> str:
    return str((Path(run_dir) / LOCK_FILE).resolve())


def _busy(e: OSError) -> bool:
    return e.errno in (errno.EAGAIN, errno.EACCES)


class RunLock:
    """Exclusive ownership of a run directory for the lifetime of one ``execute_run``."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, tries: int = 5) -> None:
        """Take the lock or raise :class:`RunInUse` naming the holder's pid.

        A few quick retries absorb a concurrent ``show`` probing the lock (its shared lock lasts microseconds).
        """
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        for i in range(tries):
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if not _busy(e):  # a filesystem without record locks (ENOLCK): run unguarded, as before locks
                    os.close(fd)
                    return
                if i == tries - 1:
                    os.close(fd)
                    raise RunInUse(in_use_message(self.run_dir)) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        _HELD.add(_key(self.run_dir))

    def release(self) -> None:
        """Give the lock up (closing the descriptor releases it); a no-op when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _HELD.discard(_key(self.run_dir))
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_pid(run_dir: Path) -> int | None:
    """The pid the last holder wrote into the lock file (for messages; the lock itself is the evidence)."""
    try:
        text = (Path(run_dir) / LOCK_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def in_use_message(run_dir: Path) -> str:
    pid = holder_pid(run_dir)
    who = f"another process (pid {pid})" if pid else "another process"
    return f"run {str(run_dir)!r} is being executed by {who}; wait for it to end or stop it first"


def is_locked(run_dir: Path) -> bool | None:
    """True when a live process holds the run's lock, False when nobody does, None when there is no lock file.

    No lock file means the run was never executed by a version that takes the lock: nothing can be told.
    """
    path = Path(run_dir) / LOCK_FILE
    if _key(run_dir) in _HELD:
        return True
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        return True if _busy(e) else None  # no record locks on this filesystem: nothing can be told
    finally:
        os.close(fd)  # also drops the probe's shared lock
    return False
