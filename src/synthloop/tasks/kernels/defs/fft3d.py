"""fft3d (R6 butterfly): forward unnormalised 3-D complex FFT as three line passes (x, y, z)."""

from __future__ import annotations

import numpy as np

from synthloop.tasks.kernels.spec import (
    Arg,
    BufferSpec,
    CheckResult,
    Entry,
    KernelTask,
    Launch,
    Size,
    max_abs_check,
)


def _fftn_gpu(z: np.ndarray) -> np.ndarray | None:
    """Reference via cuFFT (trusted library code, independent of the candidate) when a GPU is present:
    numpy's single-threaded FFT takes minutes at 512^3. Returns None without cupy or a device."""
    try:
        import cupy as cp

        if cp.cuda.runtime.getDeviceCount() < 1:
            return None
        out = cp.fft.fftn(cp.asarray(z))
        return cp.asnumpy(out).astype(np.complex64).view(np.float32).ravel()
    except Exception:
        return None


class Fft3d(KernelTask):
    name = "fft3d"
    regime = "R6 butterfly"
    unit_note = "effective, 48 B/cell (3 passes x 8 B read + 8 B write; the original's 96 B double-counted)"
    input_seed = 0xF17F
    tolerance_note = "max abs over re/im <= 1e-3 + 1e-3*max|ref|"

    def entries(self) -> tuple[Entry, ...]:
        return tuple(Entry(f"fft3d_{ax}", (Arg("in", "buffer", const=True), Arg("out", "buffer"), Arg("N", "uint")))
                     for ax in "xyz")

    def ladder(self, backend: str, split: str) -> list[Size]:
        if backend == "cuda":
            table = {"in": [64, 128, 256], "held": [512]}
        else:
            table = {"in": [16, 32, 64], "held": [128]}
        return [Size(f"{n}^3", {"N": n}) for n in table[split]]

    def buffers(self, p: Size) -> list[BufferSpec]:
        n = 2 * p["N"] ** 3
        return [BufferSpec("a", "float32", n, "inout"), BufferSpec("b", "float32", n, "scratch")]

    def init(self, p: Size, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        return {"a": rng.standard_normal(2 * p["N"] ** 3, dtype=np.float32)}

    def schedule(self, p: Size, backend: str) -> list[Launch]:
        n = p["N"]
        if backend == "cuda":
            grid, block = (n * n * n, 1, 1), (n, 1, 1)  # one block per line: blockIdx.x = line (N^2 > 65535 in y)
        else:
            grid, block = (n, n * n, 1), (n, 1, 1)
        return [Launch("fft3d_x", ("a", "b", n), grid, block), Launch("fft3d_y", ("b", "a", n), grid, block),
                Launch("fft3d_z", ("a", "b", n), grid, block)]

    def outputs(self, p: Size) -> dict[str, str]:
        return {"X": "b"}

    def reference(self, p: Size, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = p["N"]
        z = inputs["a"].view(np.complex64).reshape(n, n, n)
        if n >= 256:
            out = _fftn_gpu(z)
            if out is not None:
                return {"X": out}
        out = np.fft.fftn(z if n >= 256 else z.astype(np.complex128))
        return {"X": out.astype(np.complex64).view(np.float32).ravel()}

    def check(self, p: Size, got: dict[str, np.ndarray], ref: dict[str, np.ndarray],
              inputs: dict[str, np.ndarray]) -> CheckResult:
        return max_abs_check(got["X"], ref["X"], 1e-3, 1e-3, "X")

    def bytes_moved(self, p: Size) -> float:
        return 48.0 * p["N"] ** 3

    def flops(self, p: Size) -> float:
        n = p["N"]
        return 15.0 * n ** 3 * np.log2(n)

    def description(self, backend: str) -> str:
        common = (
            "Forward, unnormalised 3-D complex FFT matching numpy.fft.fftn, on float2[N][N][N] (interleaved re, im; "
            "x fastest: element (k*N + j)*N + i), N a power of two <= 1024. Per repetition the host calls fft3d_x "
            "(a -> b), fft3d_y (b -> a), fft3d_z (a -> b); the result is in b. Each pass applies a length-N FFT "
            "(X_k = sum_n x_n e^{-2 pi i nk/N}) along its axis to every one of the N^2 lines.\n"
            "External FFT libraries (FFTW, MKL, cuFFT) are not allowed.\n"
        )
        if backend == "cuda":
            return common + ("Launch: one block of N threads per line, N^3 threads in all: blockIdx.x is the line "
                             "index l in [0, N^2) and threadIdx.x the position along the line. Lines decode as "
                             "x pass (j, k) = (l % N, l / N); y pass (i, k) = (l % N, l / N); z pass (i, j) = "
                             "(l % N, l / N).")
        return common + "Each call transforms all N^2 lines along its axis."
