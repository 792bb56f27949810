"""Backend-neutral description of a kernel task (data plus pure functions).

A task says *what* is computed and *how the host drives it*, never how a
backend runs it. Every backend (``cpu`` C functions, ``cuda`` NVRTC kernels,
later ``metal``) reads the same definition:

* :class:`Size` -- one problem configuration (grid, steps, constants);
* :class:`BufferSpec` -- a named, typed buffer with a role;
* :class:`Entry` -- an entry point and its ordered arguments (buffers first as
  in the Metal original, scalars passed by value);
* :class:`Launch` -- one call in the per-repetition schedule, with the logical
  grid (one logical thread per output; the CUDA backend pads to block
  multiples, kernels guard) and the CUDA block shape;
* :class:`CheckResult` -- the checker's verdict (NaN/Inf handled explicitly).

This module imports only numpy so that the GPU check script runs on machines
without pydantic or the rest of synthloop.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BACKENDS: tuple[str, ...] = ("cpu", "cuda")
SPLITS: tuple[str, ...] = ("in", "held")
ROLES: tuple[str, ...] = ("in", "out", "inout", "scratch", "counter")
SCALAR_TYPES: tuple[str, ...] = ("float", "uint", "int")
SEED_DIR = Path(__file__).with_name("seeds")


@dataclass(frozen=True)
class Size:
    """One problem configuration. ``params`` is JSON-ready and hashed into cache keys."""

    label: str
    params: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def key(self) -> str:
        """A stable identity for caches (label excluded: the numbers are what matter)."""
        return hashlib.sha256(json.dumps(self.params, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "params": dict(self.params)}


@dataclass(frozen=True)
class BufferSpec:
    """A device/host buffer: element dtype, element count, role.

    Roles: ``in`` (read-only; checked for mutation), ``out`` (written),
    ``inout`` (state, reset before every repetition), ``scratch`` (zeroed before
    every repetition), ``counter`` (integer state zeroed before every repetition).
    """

    name: str
    dtype: str
    count: int
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"buffer {self.name}: unknown role {self.role!r}")
        if self.count <= 0:
            raise ValueError(f"buffer {self.name}: count must be positive")

    @property
    def nbytes(self) -> int:
        return int(self.count) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class Arg:
    """An entry-point argument: a buffer (``kind='buffer'``) or a by-value scalar."""

    name: str
    kind: str  # "buffer" or one of SCALAR_TYPES
    const: bool = False  # buffer is read-only in the contract (``const float*``)


@dataclass(frozen=True)
class Entry:
    name: str
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class Launch:
    """One call of the schedule. ``args`` aligns with the entry's arguments:
    buffer names (str) for buffer arguments, numbers for scalars."""

    entry: str
    args: tuple[Any, ...]
    grid: tuple[int, int, int]
    block: tuple[int, int, int]


@dataclass
class CheckResult:
    ok: bool
    kind: str  # "max_abs", "mismatch", "nonfinite", "stat", "cell_overflow", ...
    value: float
    tol: float
    detail: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        status = "correct" if self.ok else "INCORRECT"
        return f"{status} ({self.kind}={self.value:.4g}, tol={self.tol:.4g})"

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "kind": self.kind, "value": _json_num(self.value),
                "tol": _json_num(self.tol), "detail": self.detail}


def _json_num(x: float) -> float | str:
    return float(x) if math.isfinite(x) else str(x)


def max_abs_check(got: np.ndarray, ref: np.ndarray, atol: float, rtol: float,
                  name: str = "output") -> CheckResult:
    """``max|got-ref| <= atol + rtol*max|ref|`` with explicit NaN/Inf handling.

    A NaN anywhere fails with kind ``nonfinite`` (instead of relying on
    ``nan <= tol`` being false), and a shape mismatch fails with kind ``shape``.
    """
    got = np.asarray(got)
    ref = np.asarray(ref)
    if got.shape != ref.shape:
        return CheckResult(False, "shape", math.inf, 0.0, {"got": list(got.shape), "want": list(ref.shape)})
    tol = float(atol + rtol * float(np.max(np.abs(ref))) if ref.size else atol)
    finite = np.isfinite(got)
    if not finite.all():
        bad = int(got.size - np.count_nonzero(finite))
        first = int(np.flatnonzero(~finite.ravel())[0])
        return CheckResult(False, "nonfinite", float(bad), tol, {"buffer": name, "count": bad, "first_index": first})
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    err = float(diff.max()) if diff.size else 0.0
    detail: dict[str, Any] = {"buffer": name}
    if err > tol:
        idx = int(np.argmax(diff.ravel()))
        detail.update(worst_index=idx, got=float(got.ravel()[idx]), want=float(ref.ravel()[idx]),
                      n_bad=int(np.count_nonzero(diff > tol)))
    return CheckResult(err <= tol, "max_abs", err, tol, detail)


def combine_checks(checks: list[CheckResult]) -> CheckResult:
    """The first failing check, or the one with the largest error/tolerance ratio."""
    for c in checks:
        if not c.ok:
            return c
    return max(checks, key=lambda c: (c.value / c.tol) if c.tol > 0 else c.value)


def grid_size(dims: tuple[int, ...], steps: int, names: tuple[str, ...] = ("NX", "NY", "NZ")) -> Size:
    """A grid size (NX, NY[, NZ] unless ``names`` says otherwise) with its label: ``128^2x50`` for a square
    grid, ``384x200x30`` otherwise."""
    names = names[: len(dims)]
    square = len(set(dims)) == 1
    label = f"{dims[0]}^{len(dims)}x{steps}" if square else "x".join(str(d) for d in (*dims, steps))
    return Size(label, {**dict(zip(names, dims)), "steps": steps})


def ping_pong(step: int, a: str, b: str) -> tuple[str, str]:
    """(source, destination) of step ``step`` when two buffers swap roles every step."""
    return (a, b) if step % 2 == 0 else (b, a)


def after_steps(steps: int, a: str, b: str) -> str:
    """The buffer that holds the result after ``steps`` ping-pong steps starting from ``a``."""
    return a if steps % 2 == 0 else b


def ceil_div(a: int, b: int) -> int:
    return -(-int(a) // int(b))


def gaussian_bump(shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """exp(-r^2 / (2 sigma^2)) around the grid centre, in index units; shape is (.., y, x); fp32.

    Built as an outer product of 1-D factors (separable), so 512^3 grids cost one pass."""
    out = np.ones((1,) * len(shape), dtype=np.float32)
    for d, n in enumerate(shape):
        a = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
        sh = [1] * len(shape)
        sh[d] = n
        out = out * np.exp(-(a * a) / (2.0 * sigma * sigma)).astype(np.float32).reshape(sh)
    return out


def zero_faces(a: np.ndarray) -> np.ndarray:
    """Zero every face of an n-d array (in place) and return it."""
    for d in range(a.ndim):
        idx: list[Any] = [slice(None)] * a.ndim
        idx[d] = 0
        a[tuple(idx)] = 0
        idx[d] = -1
        a[tuple(idx)] = 0
    return a


def variant_seed(base: int, variant: int) -> int:
    """Input seed of a measurement variant. Variant 0 is the spec's seed."""
    return int((base + variant * 0x9E3779B1) & 0xFFFFFFFF)


class KernelTask(ABC):
    """A backend-neutral kernel task. Subclasses are stateless singletons."""

    name: str = "abstract"
    regime: str = ""
    version: int = 1
    #: primary unit used for "achieved" in reports: "GB/s" or "GFLOP/s"
    unit: str = "GB/s"
    unit_note: str = ""
    input_seed: int = 0
    tolerance_note: str = ""

    # ---- description ---------------------------------------------------
    @abstractmethod
    def entries(self) -> tuple[Entry, ...]: ...

    @abstractmethod
    def ladder(self, backend: str, split: str) -> list[Size]:
        """Sizes per backend: ``split='in'`` (in-distribution) or ``'held'`` (held-out)."""

    @abstractmethod
    def buffers(self, p: Size) -> list[BufferSpec]: ...

    @abstractmethod
    def init(self, p: Size, seed: int) -> dict[str, np.ndarray]:
        """Initial contents of every ``in``/``inout`` buffer (flat arrays of the buffer dtype).
        Buffers not returned start zeroed."""

    @abstractmethod
    def schedule(self, p: Size, backend: str) -> list[Launch]: ...

    @abstractmethod
    def outputs(self, p: Size) -> dict[str, str]:
        """Logical output name -> the buffer that holds it after one repetition."""

    @abstractmethod
    def reference(self, p: Size, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Expected outputs (flat, keyed by logical output name) from the initial inputs."""

    @abstractmethod
    def check(self, p: Size, got: dict[str, np.ndarray], ref: dict[str, np.ndarray],
              inputs: dict[str, np.ndarray]) -> CheckResult: ...

    @abstractmethod
    def bytes_moved(self, p: Size) -> float:
        """Compulsory DRAM-level traffic of one repetition under the task's byte model."""

    @abstractmethod
    def flops(self, p: Size) -> float:
        """Floating-point work of one repetition under the task's FLOP model."""

    @abstractmethod
    def description(self, backend: str) -> str:
        """Prompt material: math, layout, host schedule and contract for this backend."""

    # ---- shared behaviour -------------------------------------------------
    def sizes(self, backend: str, split: str = "in") -> list[Size]:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        return self.ladder(backend, split)

    def needs_reference(self) -> bool:
        """False for statistically checked tasks (hmc)."""
        return True

    def work(self, p: Size) -> float:
        """The work in the task's primary unit (bytes or FLOPs) for the achieved rate."""
        return self.bytes_moved(p) if self.unit == "GB/s" else self.flops(p)

    def working_set(self, p: Size) -> int:
        """Bytes of all buffers: picks the memory level whose bandwidth bounds the size."""
        return int(sum(b.nbytes for b in self.buffers(p)))

    def entry_map(self) -> dict[str, Entry]:
        return {e.name: e for e in self.entries()}

    def seed_source(self, backend: str) -> str:
        ext = {"cpu": "c", "cuda": "cu"}[backend]
        return (SEED_DIR / backend / f"{self.name}.{ext}").read_text()

    def signatures(self, backend: str) -> str:
        """The exact entry-point signatures of the contract, rendered for the backend."""
        ctype = {"float": "float", "uint": "uint32_t" if backend == "cpu" else "unsigned int", "int": "int"}
        bufs = {b.name: b.dtype for b in self.buffers(self.sizes(backend, "in")[0])}
        lines = []
        for e in self.entries():
            args = []
            for a in e.args:
                if a.kind == "buffer":
                    dt = _C_DTYPES[self._arg_dtype(e, a, bufs)]
                    args.append(f"{'const ' if a.const else ''}{dt}* {a.name}")
                else:
                    args.append(f"{ctype[a.kind]} {a.name}")
            prefix = 'extern "C" __global__ void' if backend == "cuda" else "void"
            lines.append(f"{prefix} {e.name}({', '.join(args)});")
        return "\n".join(lines)

    def _arg_dtype(self, e: Entry, a: Arg, bufs: dict[str, str]) -> str:
        """dtype of a buffer argument: from the first launch that binds it."""
        p = self.sizes("cpu", "in")[0]
        for launch in self.schedule(p, "cpu"):
            if launch.entry == e.name:
                idx = [x.name for x in e.args].index(a.name)
                return bufs[launch.args[idx]]
        raise KeyError(f"{e.name}.{a.name} is never launched")

    def validate_schedule(self, p: Size, backend: str) -> None:
        """Raise if the schedule binds unknown buffers or mistyped arguments (a definition bug)."""
        entries = self.entry_map()
        bufs = {b.name for b in self.buffers(p)}
        for launch in self.schedule(p, backend):
            e = entries[launch.entry]
            if len(launch.args) != len(e.args):
                raise ValueError(f"{self.name}: {e.name} takes {len(e.args)} args, got {len(launch.args)}")
            for a, v in zip(e.args, launch.args):
                if a.kind == "buffer" and v not in bufs:
                    raise ValueError(f"{self.name}: {e.name}.{a.name} binds unknown buffer {v!r}")
                if a.kind != "buffer" and isinstance(v, str):
                    raise ValueError(f"{self.name}: scalar {e.name}.{a.name} bound to {v!r}")


_C_DTYPES = {"float32": "float", "int8": "signed char", "uint32": "unsigned int", "int32": "int"}
