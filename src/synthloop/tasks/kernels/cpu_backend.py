"""CPU backend: the candidate is C (one function per step over the whole grid), built with the system
compiler and called through ctypes.

* Build: ``cc -O3 -march=native -fopenmp -shared -fPIC``; shared objects are cached by the SHA-256 of
  (source, flags, compiler version), so re-evaluating a kernel never recompiles it.
* Threads: the worker runs with ``OMP_NUM_THREADS`` fixed and ``OMP_PROC_BIND=close``,
  ``OMP_PLACES=cores`` (pinned); the count actually used is read back from libgomp and reported.
* Loading the shared object executes native code (constructors included), so this module's
  :class:`CpuDevice` is only ever used inside the worker child process.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.tasks.kernels.paths import cache_dir
from synthloop.tasks.kernels.runner import GUARD_BYTE, GUARD_BYTES
from synthloop.tasks.kernels.spec import BufferSpec, KernelTask, Size

CFLAGS: tuple[str, ...] = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=gnu11")
_CTYPES = {"float": ctypes.c_float, "uint": ctypes.c_uint32, "int": ctypes.c_int32}


def compiler() -> str:
    return os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc") or "cc"


def compiler_version(cc: str | None = None) -> str:
    try:
        out = subprocess.run([cc or compiler(), "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.splitlines()[0] if out.stdout else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass
class CompileResult:
    ok: bool
    path: str | None
    log: str
    cached: bool
    seconds: float
    key: str


def trim_log(log: str, max_lines: int = 30) -> str:
    """Keep the diagnostic lines (errors first, then warnings, with one line of context each)."""
    lines = [ln for ln in log.splitlines() if ln.strip()]
    keep: list[str] = []
    for i, ln in enumerate(lines):
        if re.search(r"\berror\b", ln) or re.search(r"\bwarning\b", ln) or "undefined reference" in ln:
            keep.extend(lines[i:i + 2])
    keep = list(dict.fromkeys(keep)) or lines
    if len(keep) > max_lines:
        keep = keep[:max_lines] + [f"... ({len(keep) - max_lines} more lines)"]
    return "\n".join(keep)


def compile_c(source: str, *, extra_flags: tuple[str, ...] = (), timeout_s: float = 120.0) -> CompileResult:
    """Compile C source to a cached shared object; never raises for bad source."""
    cc = compiler()
    flags = CFLAGS + tuple(extra_flags)
    key = hashlib.sha256("\0".join([source, " ".join(flags), compiler_version(cc)]).encode()).hexdigest()[:24]
    out_dir = cache_dir("cpu-build")
    so = out_dir / f"{key}.so"
    t0 = time.perf_counter()
    if so.exists():
        return CompileResult(True, str(so), "", True, 0.0, key)
    with tempfile.TemporaryDirectory(prefix="synthloop-cc-") as tmp:
        src = Path(tmp) / "kernel.c"
        src.write_text(source)
        tmp_so = Path(tmp) / "kernel.so"
        try:
            proc = subprocess.run([cc, *flags, "kernel.c", "-o", "kernel.so", "-lm"], cwd=tmp, capture_output=True,
                                  text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return CompileResult(False, None, f"compiler timed out after {timeout_s:.0f} s", False,
                                 time.perf_counter() - t0, key)
        log = (proc.stdout + proc.stderr).replace(tmp + "/", "")
        if proc.returncode != 0 or not tmp_so.exists():
            return CompileResult(False, None, trim_log(log) or f"compiler exited {proc.returncode}", False,
                                 time.perf_counter() - t0, key)
        partial = out_dir / f".{key}.{os.getpid()}.tmp"
        shutil.copyfile(tmp_so, partial)
        os.replace(partial, so)
    return CompileResult(True, str(so), trim_log(log) if log.strip() else "", False, time.perf_counter() - t0, key)


class _Buf:
    """A host buffer with guard zones; ``ptr`` points past the leading guard (64-byte aligned)."""

    def __init__(self, spec: BufferSpec) -> None:
        self.spec = spec
        raw = np.empty(spec.nbytes + 2 * GUARD_BYTES + 64, dtype=np.uint8)
        off = (-raw.ctypes.data) % 64
        self.raw = raw[off: off + spec.nbytes + 2 * GUARD_BYTES]
        self.raw[:] = GUARD_BYTE
        self.view = self.raw[GUARD_BYTES: GUARD_BYTES + spec.nbytes].view(spec.dtype)
        self.view[:] = 0
        self.ptr = self.raw.ctypes.data + GUARD_BYTES


class CpuDevice:
    """The :class:`~synthloop.tasks.kernels.runner.Device` for C shared objects (worker-side only)."""

    def __init__(self, so_path: str) -> None:
        self.lib = ctypes.CDLL(so_path, mode=getattr(os, "RTLD_LOCAL", 0))
        self.libs = {so_path: self.lib}

    def _lib(self, module: str | None) -> ctypes.CDLL:
        if module is None:
            return self.lib
        if module not in self.libs:
            self.libs[module] = ctypes.CDLL(module, mode=getattr(os, "RTLD_LOCAL", 0))
        return self.libs[module]

    def alloc(self, spec: BufferSpec) -> _Buf:
        return _Buf(spec)

    def stage(self, array: np.ndarray) -> np.ndarray:
        return array.copy()

    def restore(self, buf: _Buf, staged: np.ndarray | None) -> None:
        if staged is None:
            buf.view[:] = 0
        else:
            np.copyto(buf.view, staged.reshape(buf.view.shape).astype(buf.view.dtype, copy=False))

    def download(self, buf: _Buf) -> np.ndarray:
        return buf.view.copy()

    def guard_ok(self, buf: _Buf) -> bool:
        return bool((buf.raw[:GUARD_BYTES] == GUARD_BYTE).all() and (buf.raw[-GUARD_BYTES:] == GUARD_BYTE).all())

    def prepare(self, task: KernelTask, p: Size, bufs: dict[str, _Buf], module: str | None = None) -> list[Any]:
        lib = self._lib(module)
        entries = task.entry_map()
        fns: dict[str, Any] = {}
        calls = []
        for launch in task.schedule(p, "cpu"):
            e = entries[launch.entry]
            if e.name not in fns:
                try:
                    fn = getattr(lib, e.name)
                except AttributeError:
                    raise MissingEntryPoint(e.name) from None
                fn.restype = None
                fn.argtypes = [ctypes.c_void_p if a.kind == "buffer" else _CTYPES[a.kind] for a in e.args]
                fns[e.name] = fn
            args = tuple(bufs[v].ptr if a.kind == "buffer" else v for a, v in zip(e.args, launch.args))
            calls.append((fns[e.name], args))
        return calls

    def run(self, rep: list[Any]) -> float:
        t0 = time.perf_counter_ns()
        for fn, args in rep:
            fn(*args)
        return (time.perf_counter_ns() - t0) * 1e-9

    def info(self) -> dict[str, Any]:
        threads = None
        try:
            threads = int(self.lib.omp_get_max_threads())
        except AttributeError:
            pass
        return {"backend": "cpu", "threads": threads, "omp_proc_bind": os.environ.get("OMP_PROC_BIND"),
                "omp_places": os.environ.get("OMP_PLACES")}


class MissingEntryPoint(Exception):
    kind = "missing_entry"

    def __init__(self, name: str) -> None:
        super().__init__(f"entry point {name!r} not found in the compiled library (declare it with C linkage)")
        self.name = name


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def worker_env(threads: int | None = None) -> dict[str, str]:
    """Environment for the worker: fixed, pinned OpenMP threads; numpy's own pools kept single-threaded."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads or default_threads()), OMP_PROC_BIND="close", OMP_PLACES="cores",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    return env
