"""CUDA backend: CUDA C compiled at runtime with NVRTC through CuPy (``cupy.RawModule``).

* cupy is imported lazily: the package, its tests and the CPU backend work without it.
* NVRTC options: ``-std=c++17``, ``--use_fast_math`` (closest to Metal's default), optional ``-lineinfo``.
  NVRTC rejects ``-O3`` (``NVRTC_ERROR_INVALID_OPTION``); :func:`nvrtc_options` refuses it up front.
* Launch: grids are padded to block multiples (CUDA has no partial edge blocks); kernels receive the
  logical extents and must guard.
* Timing: the whole repetition (every launch of every step) is captured once into a CUDA Graph per
  (size, candidate) and replayed between two CUDA events; state is reset with device-to-device copies
  outside the timed window (data stays hot in L2, as in the spec's measurements). Python-side launch
  overhead (about 6 us per launch) would otherwise dominate multi-step tasks.
* A sticky CUDA error (illegal address) poisons the context, so the device raises :class:`FatalCudaError`
  and the worker exits; the parent restarts a fresh worker for the next size.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

import numpy as np

from synthloop.tasks.kernels.runner import GUARD_BYTE, GUARD_BYTES
from synthloop.tasks.kernels.spec import BufferSpec, KernelTask, Launch, Size, ceil_div

_SCALAR_NP: dict[str, Any] = {"float": np.float32, "uint": np.uint32, "int": np.int32}
REJECTED_OPTIONS = ("-O3", "-O2", "-O1", "-O0", "--optimize")
GPU_FOOTPRINTS = (6 << 20, 24 << 20, 96 << 20, 384 << 20, 1536 << 20)


def nvrtc_options(*, fast_math: bool = True, lineinfo: bool = False, arch: str | None = None,
                  extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The NVRTC option list. Raises ValueError for options NVRTC rejects (``-O3`` and friends)."""
    opts = ["-std=c++17"]
    if fast_math:
        opts.append("--use_fast_math")
    if lineinfo:
        opts.append("-lineinfo")
    if arch:
        opts.append(f"--gpu-architecture={arch}")
    for o in extra:
        if o.split("=")[0] in REJECTED_OPTIONS:
            raise ValueError(f"NVRTC rejects {o!r} (it always optimises; use --use_fast_math for fast math)")
        opts.append(o)
    return tuple(opts)


def launch_dims(launch: Launch) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(blocks per grid, threads per block): the logical grid padded up to block multiples."""
    blocks = tuple(ceil_div(g, b) for g, b in zip(launch.grid, launch.block))
    if blocks[1] > 65535 or blocks[2] > 65535:
        raise ValueError(f"{launch.entry}: grid {blocks} exceeds CUDA's 65535 limit in y/z")
    if int(np.prod(launch.block)) > 1024:
        raise ValueError(f"{launch.entry}: block {launch.block} exceeds 1024 threads")
    return blocks, launch.block  # type: ignore[return-value]


def trim_nvrtc_log(log: str, max_lines: int = 30) -> str:
    """Keep NVRTC's diagnostic lines (``error``/``warning``) and their source excerpt."""
    lines = [ln for ln in log.splitlines() if ln.strip()]
    keep = [ln for i, ln in enumerate(lines)
            if re.search(r"\berror\b|\bwarning\b", ln) or (i > 0 and re.search(r"\berror\b", lines[i - 1]))]
    keep = keep or lines
    return "\n".join(keep[:max_lines] + ([f"... ({len(keep) - max_lines} more)"] if len(keep) > max_lines else []))


class KernelCompileError(Exception):
    kind = "compile"


class FatalCudaError(Exception):
    kind = "cuda_error"
    fatal = True


def _cupy() -> Any:
    import cupy  # noqa: PLC0415 - optional dependency, imported lazily

    return cupy


def gpu_available() -> bool:
    try:
        cp = _cupy()
        return int(cp.cuda.runtime.getDeviceCount()) > 0
    except Exception:
        return False


def compile_module(source: str, options: tuple[str, ...]) -> Any:
    cp = _cupy()
    try:
        mod = cp.RawModule(code=source, options=options)
        if hasattr(mod, "compile"):
            mod.compile()
        return mod
    except Exception as e:  # cupy.cuda.compiler.CompileException carries the NVRTC log
        log = e.get_message() if hasattr(e, "get_message") else str(e)
        raise KernelCompileError(trim_nvrtc_log(str(log))) from None


class _Buf:
    def __init__(self, cp: Any, spec: BufferSpec) -> None:
        self.spec = spec
        self.raw = cp.full(spec.nbytes + 2 * GUARD_BYTES, GUARD_BYTE, dtype=cp.uint8)
        self.view = self.raw[GUARD_BYTES: GUARD_BYTES + spec.nbytes].view(spec.dtype)
        self.view.fill(0)


class CudaDevice:
    """The :class:`~synthloop.tasks.kernels.runner.Device` for NVRTC modules (worker-side or trusted seeds)."""

    def __init__(self, source: str, *, fast_math: bool = True, use_graph: bool = True) -> None:
        self.cp = _cupy()
        self.options = nvrtc_options(fast_math=fast_math)
        self.use_graph = use_graph
        self.stream = self.cp.cuda.Stream(non_blocking=True)
        self.modules: dict[str, Any] = {source: compile_module(source, self.options)}
        self.source = source
        self.graph_used: bool | None = None

    def _module(self, source: str | None) -> Any:
        src = source or self.source
        if src not in self.modules:
            self.modules[src] = compile_module(src, self.options)
        return self.modules[src]

    def alloc(self, spec: BufferSpec) -> _Buf:
        with self.stream:
            return _Buf(self.cp, spec)

    def stage(self, array: np.ndarray) -> Any:
        with self.stream:
            return self.cp.asarray(array)

    def restore(self, buf: _Buf, staged: Any | None) -> None:
        with self.stream:
            if staged is None:
                buf.view.fill(0)
            else:
                buf.view[...] = staged.reshape(buf.view.shape).astype(buf.view.dtype, copy=False)

    def download(self, buf: _Buf) -> np.ndarray:
        self.stream.synchronize()
        return self.cp.asnumpy(buf.view)

    def guard_ok(self, buf: _Buf) -> bool:
        self.stream.synchronize()
        head = self.cp.asnumpy(buf.raw[:GUARD_BYTES])
        tail = self.cp.asnumpy(buf.raw[-GUARD_BYTES:])
        return bool((head == GUARD_BYTE).all() and (tail == GUARD_BYTE).all())

    def prepare(self, task: KernelTask, p: Size, bufs: dict[str, _Buf], module: str | None = None) -> dict[str, Any]:
        mod = self._module(module)
        entries = task.entry_map()
        fns: dict[str, Any] = {}
        calls = []
        for launch in task.schedule(p, "cuda"):
            e = entries[launch.entry]
            if e.name not in fns:
                try:
                    fns[e.name] = mod.get_function(e.name)
                except Exception as exc:
                    raise KernelCompileError(f"entry point {e.name!r} not found (declare it extern \"C\"): {exc}") from None
            blocks, block = launch_dims(launch)
            args = tuple(bufs[v].view if a.kind == "buffer" else _SCALAR_NP[a.kind](v) for a, v in zip(e.args, launch.args))
            calls.append((fns[e.name], blocks, block, args))
        rep: dict[str, Any] = {"calls": calls, "graph": None}
        self._launch_all(calls)  # eager run: loads the module before capture, surfaces launch errors early
        self._sync()
        if self.use_graph:
            try:
                self.stream.begin_capture()
                self._launch_all(calls)
                rep["graph"] = self.stream.end_capture()
                self.graph_used = True
            except Exception:
                try:
                    if self.stream.is_capturing():
                        self.stream.end_capture()
                except Exception:
                    pass
                rep["graph"] = None
                self.graph_used = False
        return rep

    def _launch_all(self, calls: list[Any]) -> None:
        with self.stream:
            for fn, blocks, block, args in calls:
                fn(blocks, block, args)

    def _sync(self) -> None:
        try:
            self.stream.synchronize()
        except Exception as e:
            raise FatalCudaError(f"CUDA error (context is now unusable): {e}") from None

    def run(self, rep: dict[str, Any]) -> float:
        cp = self.cp
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record(self.stream)
        if rep["graph"] is not None:
            rep["graph"].launch(self.stream)
        else:
            self._launch_all(rep["calls"])
        end.record(self.stream)
        try:
            end.synchronize()
        except Exception as e:
            raise FatalCudaError(f"CUDA error (context is now unusable): {e}") from None
        return float(cp.cuda.get_elapsed_time(start, end)) * 1e-3

    def info(self) -> dict[str, Any]:
        return {"backend": "cuda", "device": device_name(), "graph": self.graph_used, "nvrtc_options": list(self.options)}


def device_name() -> str:
    cp = _cupy()
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props.get("name", b"gpu")
    return name.decode() if isinstance(name, bytes) else str(name)


def gpu_machine_key() -> str:
    cp = _cupy()
    dev = cp.cuda.Device()
    raw = f"{device_name()}|{dev.compute_capability}|{cp.__version__}|{cp.cuda.runtime.driverGetVersion()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


_MICRO = r"""
extern "C" __global__ void triad(float4* a, const float4* b, const float4* c, float s, unsigned long long n4,
                                  int inner) {
    // `inner` repeats the sweep inside one launch so cache-resident footprints are not launch-bound;
    // each thread revisits the same indices, so the repeats need no synchronisation.
    for (int r = 0; r < inner; ++r) {
        for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n4;
             i += (unsigned long long)gridDim.x * blockDim.x) {
            float4 x = b[i], y = c[i];
            a[i] = make_float4(x.x + s * y.x, x.y + s * y.y, x.z + s * y.z, x.w + s * y.w);
        }
    }
}
extern "C" __global__ void fma_chain(float* out, int iters) {
    float m = 0.999f, c = 0.001f * (threadIdx.x + 1);
    float x0 = c, x1 = 2 * c, x2 = 3 * c, x3 = 4 * c, x4 = 5 * c, x5 = 6 * c, x6 = 7 * c, x7 = 8 * c;
    for (int i = 0; i < iters; ++i) {
        x0 = fmaf(x0, m, c); x1 = fmaf(x1, m, c); x2 = fmaf(x2, m, c); x3 = fmaf(x3, m, c);
        x4 = fmaf(x4, m, c); x5 = fmaf(x5, m, c); x6 = fmaf(x6, m, c); x7 = fmaf(x7, m, c);
    }
    float s = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
    if (s == 123.456f) out[0] = s;
}
"""


def _time_best(cp: Any, fn: Any, reps: int = 20) -> float:
    fn()
    cp.cuda.Device().synchronize()
    best = float("inf")
    for _ in range(reps):
        s, e = cp.cuda.Event(), cp.cuda.Event()
        s.record()
        fn()
        e.record()
        e.synchronize()
        best = min(best, cp.cuda.get_elapsed_time(s, e) * 1e-3)
    return best


def measure_cuda_ceilings() -> Any:
    """Triad bandwidth at L2- and HBM-sized footprints, FMA-chain peak, and theoretical numbers."""
    from synthloop.tasks.kernels.ceilings import Ceilings

    cp = _cupy()
    mod = cp.RawModule(code=_MICRO, options=("-std=c++17",))
    triad, fma = mod.get_function("triad"), mod.get_function("fma_chain")
    dev = cp.cuda.Device()
    sms = int(dev.attributes.get("MultiProcessorCount", 132))
    levels = []
    for fp in GPU_FOOTPRINTS:
        n4 = max(1, fp // 48)
        a, b, c = (cp.ones(4 * n4, dtype=cp.float32) for _ in range(3))
        blocks = min(ceil_div(n4, 256), sms * 8)
        inner = max(1, int((256 << 20) // (48 * n4)))
        t = _time_best(cp, lambda a=a, b=b, c=c, n4=n4, blocks=blocks, inner=inner: triad(
            (blocks,), (256,), (a, b, c, np.float32(1.5), np.uint64(n4), np.int32(inner))))
        levels.append((int(48 * n4), 48.0 * n4 * inner / t))
        del a, b, c
    out = cp.zeros(1, dtype=cp.float32)
    iters, threads = 4096, sms * 2048 * 4
    t = _time_best(cp, lambda: fma((threads // 256,), (256,), (out, np.int32(iters))), reps=10)
    peak = 2.0 * 8 * iters * threads / t
    theo: dict[str, float] = {}
    try:
        attrs = dev.attributes
        mem_khz, bus = attrs.get("MemoryClockRate"), attrs.get("GlobalMemoryBusWidth")
        clk_khz = attrs.get("ClockRate")
        if mem_khz and bus:
            theo["dram_bytes_per_s"] = 2.0 * mem_khz * 1e3 * bus / 8
        if clk_khz:
            theo["fp32_flops_per_s"] = sms * 128 * 2.0 * clk_khz * 1e3
    except Exception:
        pass
    return Ceilings(backend="cuda", machine="", levels=levels, peak_flops=peak, threads=None, theoretical=theo,
                    device=device_name(), measured_at=time.time())
