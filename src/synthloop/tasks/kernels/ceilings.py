"""Speed-of-light ceilings measured once per machine and cached.

* Bandwidth: a STREAM-triad analogue ``a[i] = b[i] + s*c[i]`` at several footprints, so each memory level
  (L1/L2/LLC/DRAM on a CPU; L2/HBM on a GPU) gets its own number. Counted as 12 B per element (two loads,
  one store; write-allocate traffic is *not* counted, matching the task byte models).
* Compute: an FMA-chain kernel with enough independent chains to hide FMA latency.

The per-size attainable ceiling (see :mod:`synthloop.tasks.kernels.fitness`) uses the bandwidth of the
level the working set lives in: the largest measured footprint not above the working set (the smallest
footprint when the working set is smaller still). That is an upper bound on the attainable bandwidth, so
fractions above 1 mean the measurement or the byte model is off and are flagged, not rewarded.

Cache: ``<cache>/ceilings/<backend>-<machine key>.json`` where the key hashes the CPU model / GPU name,
thread count and toolchain.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from synthloop.tasks.kernels.paths import cache_dir

VERSION = 3  # 3: the FMA-chain peak no longer spills registers on AVX2 machines
CPU_FOOTPRINTS = (24 << 10, 192 << 10, 1536 << 10, 12 << 20, 96 << 20, 384 << 20)

_CPU_BENCH = r"""
#include <omp.h>
#include <stddef.h>

double triad(float* a, const float* b, const float* c, long n, float s, int inner, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        double t0 = omp_get_wtime();
        #pragma omp parallel
        {
            for (int k = 0; k < inner; ++k) {
                #pragma omp for schedule(static) nowait
                for (long i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
            }
        }
        double t = omp_get_wtime() - t0;
        if (t < best) best = t;
    }
    return best;
}

/* One vector register per chain: 10 chains plus m and c must fit the register file, or every FMA waits on
   a spill. A 64-byte vector is two registers under AVX2 (16 of them): 24 live registers spilled and measured
   6.7 instead of 86 GFLOP/s on one Zen core, which made bandwidth-bound kernels look compute-bound. */
#if defined(__AVX512F__)
#define VBYTES 64
#elif defined(__AVX__)
#define VBYTES 32
#else
#define VBYTES 16
#endif
#define LANES (VBYTES / 4)
typedef float vreg __attribute__((vector_size(VBYTES)));

int fma_lanes(void) { return LANES; }

double fma_peak(long iters, int reps, float* sink, int* threads) {
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        double t0 = omp_get_wtime();
        float acc = 0.f;
        int nt = 1;
        #pragma omp parallel reduction(+:acc)
        {
            nt = omp_get_num_threads();
            vreg m = {0}, c = {0};
            vreg x0, x1, x2, x3, x4, x5, x6, x7, x8, x9;
            for (int l = 0; l < LANES; ++l) { m[l] = 0.999f; c[l] = 0.001f * (float)(l + 1); }
            x0 = c; x1 = c * 2; x2 = c * 3; x3 = c * 4; x4 = c * 5; x5 = c * 6; x6 = c * 7; x7 = c * 8;
            x8 = c * 9; x9 = c * 10;
            for (long i = 0; i < iters; ++i) {
                x0 = x0 * m + c; x1 = x1 * m + c; x2 = x2 * m + c; x3 = x3 * m + c; x4 = x4 * m + c;
                x5 = x5 * m + c; x6 = x6 * m + c; x7 = x7 * m + c; x8 = x8 * m + c; x9 = x9 * m + c;
            }
            vreg s = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9;
            for (int l = 0; l < LANES; ++l) acc += s[l];
        }
        double t = omp_get_wtime() - t0;
        *sink = acc;
        *threads = nt;
        if (t < best) best = t;
    }
    return best;
}
"""


@dataclass
class Ceilings:
    backend: str
    machine: str
    levels: list[tuple[int, float]]  # (footprint bytes, bytes/s), ascending footprint
    peak_flops: float
    threads: int | None = None
    theoretical: dict[str, float] = field(default_factory=dict)
    device: str = ""
    measured_at: float = 0.0
    version: int = VERSION

    def bandwidth_for(self, working_set: int) -> tuple[float, int]:
        """(bytes/s, level footprint) of the level a working set of this size lives in."""
        below = [lv for lv in self.levels if lv[0] <= working_set]
        f, bw = below[-1] if below else self.levels[0]
        # a larger footprint is never easier: if one measured faster (noise), it bounds this level too
        above = [lv for lv in self.levels if lv[0] > working_set and lv[1] > bw]
        if above:
            f, bw = max(above, key=lambda lv: lv[1])
        return bw, f

    @property
    def dram_bandwidth(self) -> float:
        return self.levels[-1][1]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["levels"] = [list(x) for x in self.levels]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ceilings:
        d = dict(d)
        d["levels"] = [(int(f), float(b)) for f, b in d["levels"]]
        return cls(**d)

    def summary_lines(self) -> list[str]:
        lines = [f"{self.backend} ceilings on {self.device or self.machine} (threads={self.threads}):"]
        for f, bw in self.levels:
            lines.append(f"  triad bandwidth @ {_fmt_bytes(f):>9}: {bw / 1e9:9.1f} GB/s")
        lines.append(f"  FMA-chain peak: {self.peak_flops / 1e9:9.1f} GFLOP/s")
        for k, v in self.theoretical.items():
            lines.append(f"  theoretical {k}: {v / 1e9:9.1f} G/s")
        return lines


def _fmt_bytes(n: int) -> str:
    for unit, s in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= s:
            return f"{n / s:g} {unit}"
    return f"{n} B"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_machine_key(threads: int) -> str:
    from synthloop.tasks.kernels.cpu_backend import compiler_version

    raw = f"{platform.node()}|{_cpu_model()}|{os.cpu_count()}|{threads}|{compiler_version()}|v{VERSION}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _cache_path(backend: str, key: str) -> Any:
    return cache_dir("ceilings") / f"{backend}-{key}.json"


def get_ceilings(backend: str, *, threads: int | None = None, refresh: bool = False) -> Ceilings:
    """Cached ceilings for this machine; measured (a few seconds) on first use."""
    if backend == "cpu":
        from synthloop.tasks.kernels.cpu_backend import default_threads

        threads = threads or default_threads()
        key = cpu_machine_key(threads)
    elif backend == "cuda":
        from synthloop.tasks.kernels.cuda_backend import gpu_machine_key

        key = gpu_machine_key()
    else:
        raise ValueError(f"unknown backend {backend!r}")
    path = _cache_path(backend, key)
    if path.exists() and not refresh:
        try:
            c = Ceilings.from_dict(json.loads(path.read_text()))
            if c.version == VERSION:
                return c
        except (ValueError, KeyError, TypeError):
            pass
    if backend == "cpu":
        c = measure_cpu(threads)  # type: ignore[arg-type]
        c.machine = key
    else:
        from synthloop.tasks.kernels.cuda_backend import measure_cuda_ceilings

        c = measure_cuda_ceilings()
        c.machine = key
    _write_cache(path, c)
    return c


def _write_cache(path: Any, c: Ceilings) -> None:
    """Replace the cached ceilings atomically (a concurrent reader sees the old file or the new one)."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(c.to_dict(), indent=1))
    os.replace(tmp, path)


_RECHECKED: set[tuple[str, str]] = set()


def recheck_ceilings(backend: str, current: Ceilings, *, threads: int | None = None) -> Ceilings | None:
    """Measure the ceilings again after a correct kernel was timed above them; ``None`` if already done.

    Cached ceilings are measured once, and a measurement taken while the machine was busy is too low: every
    fast, honest kernel then lands above the implausibility threshold and is rejected. A ceiling is an upper
    bound, so the new measurement is merged level by level with the cached one, keeping the higher figure,
    and written back to the cache. A kernel that still beats the merged ceilings stays flagged. Once per
    process and machine key, so a candidate cannot make the judge re-measure over and over.
    """
    tag = (backend, current.machine)
    if tag in _RECHECKED:
        return None
    _RECHECKED.add(tag)
    fresh = get_ceilings(backend, threads=threads, refresh=True)
    old = dict(current.levels)
    fresh.levels = [(f, max(bw, old.get(f, 0.0))) for f, bw in fresh.levels]
    fresh.peak_flops = max(fresh.peak_flops, current.peak_flops)
    _write_cache(_cache_path(backend, fresh.machine), fresh)
    return fresh


def measure_cpu(threads: int) -> Ceilings:
    """Run the CPU microbenchmarks in a child with the same pinned OpenMP setup as the kernel worker."""
    from synthloop.tasks.kernels.cpu_backend import worker_env

    proc = subprocess.run([sys.executable, "-m", "synthloop.tasks.kernels.ceilings"], capture_output=True,
                          text=True, env=worker_env(threads), timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"CPU ceiling benchmark failed: {proc.stderr[-2000:]}")
    return Ceilings.from_dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _measure_cpu_here() -> Ceilings:
    import numpy as np

    from synthloop.tasks.kernels.cpu_backend import compile_c

    res = compile_c(_CPU_BENCH)
    if not res.ok or res.path is None:
        raise RuntimeError(f"cannot build the CPU microbenchmark: {res.log}")
    lib = ctypes.CDLL(res.path)
    lib.triad.restype = ctypes.c_double
    lib.triad.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_long, ctypes.c_float, ctypes.c_int, ctypes.c_int]
    lib.fma_peak.restype = ctypes.c_double
    lib.fma_peak.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    levels = []
    for fp in CPU_FOOTPRINTS:
        n = fp // 12
        a, b, c = (np.ones(n, np.float32) for _ in range(3))
        inner = max(1, int(64e6 // (12 * n)))
        t = lib.triad(a.ctypes.data, b.ctypes.data, c.ctypes.data, n, 1.5, inner, 5)
        levels.append((fp, 12.0 * n * inner / t))
    sink = ctypes.c_float()
    nt = ctypes.c_int()
    iters = 20_000_000
    t = lib.fma_peak(iters, 5, ctypes.byref(sink), ctypes.byref(nt))
    lib.fma_lanes.restype = ctypes.c_int
    peak = 2.0 * lib.fma_lanes() * 10 * iters * nt.value / t
    return Ceilings(backend="cpu", machine="", levels=levels, peak_flops=peak, threads=nt.value,
                    device=_cpu_model(), measured_at=time.time())


if __name__ == "__main__":
    print(json.dumps(_measure_cpu_here().to_dict()))
