"""morton (R8 bit-permutation): 7-point heat step on a grid stored in Z-order."""

from __future__ import annotations

import functools

import numba
import numpy as np

from synthloop.tasks.kernels.spec import (
    Arg,
    BufferSpec,
    CheckResult,
    Entry,
    KernelTask,
    Launch,
    Size,
    after_steps,
    gaussian_bump,
    max_abs_check,
    ping_pong,
    zero_faces,
)

ALPHA = 0.10


@functools.lru_cache(maxsize=4)
def morton_index(n: int) -> np.ndarray:
    """Morton index of every row-major cell of an n^3 grid, shape (z, y, x).
    Bits of x, y, z go to bit positions 3b, 3b+1, 3b+2."""
    c = np.arange(n, dtype=np.uint64)
    spread = np.zeros(n, dtype=np.uint64)
    for b in range(int(n).bit_length()):
        spread |= ((c >> np.uint64(b)) & np.uint64(1)) << np.uint64(3 * b)
    idx = (spread[None, None, :] | (spread[None, :, None] << np.uint64(1))
           | (spread[:, None, None] << np.uint64(2)))
    idx.setflags(write=False)
    return idx


@numba.njit(parallel=True, cache=True)
def _steps(u0: np.ndarray, steps: int, alpha: np.float32) -> np.ndarray:  # pragma: no cover - jitted
    n = u0.shape[0]
    a = u0.copy()
    b = u0.copy()
    for _ in range(steps):
        for k in numba.prange(n):
            for j in range(n):
                for i in range(n):
                    c = a[k, j, i]
                    if i == 0 or j == 0 or k == 0 or i == n - 1 or j == n - 1 or k == n - 1:
                        b[k, j, i] = c
                    else:
                        b[k, j, i] = c + alpha * (a[k, j, i - 1] + a[k, j, i + 1] + a[k, j - 1, i] + a[k, j + 1, i]
                                                  + a[k - 1, j, i] + a[k + 1, j, i] - np.float32(6.0) * c)
        a, b = b, a
    return a


class Morton(KernelTask):
    name = "morton"
    regime = "R8 bit-permutation"
    version = 2  # v2: reference returned in Z-order
    unit_note = "effective, 8 B/cell/step"
    input_seed = 0x2020
    tolerance_note = "max|got-ref| <= 1e-4 + 1e-5*max|ref| (reference computed row-major, compared in Z-order)"

    def entries(self) -> tuple[Entry, ...]:
        return (Entry("morton_stencil", (Arg("u_in", "buffer", const=True), Arg("u_out", "buffer"),
                                         Arg("N", "uint"), Arg("logN", "uint"), Arg("alpha", "float"))),)

    def ladder(self, backend: str, split: str) -> list[Size]:
        if backend == "cuda":
            table = {"in": [(64, 60), (128, 30), (256, 10)], "held": [(512, 5)]}
        else:
            table = {"in": [(16, 20), (32, 10), (64, 4)], "held": [(128, 2)]}
        return [Size(f"{n}^3x{s}", {"N": n, "steps": s}) for n, s in table[split]]

    def buffers(self, p: Size) -> list[BufferSpec]:
        n = p["N"] ** 3
        return [BufferSpec("u_a", "float32", n, "inout"), BufferSpec("u_b", "float32", n, "scratch")]

    def _rowmajor_init(self, p: Size, seed: int) -> np.ndarray:
        n = p["N"]
        rng = np.random.default_rng(seed)
        u = gaussian_bump((n, n, n), 0.15 * n) * (np.float32(1.0) + np.float32(0.05) * rng.standard_normal((n, n, n), dtype=np.float32))
        return zero_faces(u.astype(np.float32))

    def init(self, p: Size, seed: int) -> dict[str, np.ndarray]:
        u = self._rowmajor_init(p, seed)
        z = np.empty(u.size, dtype=np.float32)
        z[morton_index(p["N"]).ravel()] = u.ravel()
        return {"u_a": z}

    def schedule(self, p: Size, backend: str) -> list[Launch]:
        n = p["N"]
        logn = n.bit_length() - 1
        out = []
        for s in range(p["steps"]):
            src, dst = ping_pong(s, "u_a", "u_b")
            out.append(Launch("morton_stencil", (src, dst, n, logn, ALPHA), (n ** 3, 1, 1), (256, 1, 1)))
        return out

    def outputs(self, p: Size) -> dict[str, str]:
        return {"u": after_steps(p["steps"], "u_a", "u_b")}

    def reference(self, p: Size, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = p["N"]
        idx = morton_index(n).ravel()
        rowmajor = _steps(inputs["u_a"][idx].reshape(n, n, n), int(p["steps"]), np.float32(ALPHA)).ravel()
        out = np.empty_like(rowmajor)
        out[idx] = rowmajor  # back to the buffer's Z-order layout
        return {"u": out}

    def check(self, p: Size, got: dict[str, np.ndarray], ref: dict[str, np.ndarray],
              inputs: dict[str, np.ndarray]) -> CheckResult:
        return max_abs_check(got["u"], ref["u"], 1e-4, 1e-5, "u")

    def bytes_moved(self, p: Size) -> float:
        return 8.0 * p["N"] ** 3 * p["steps"]

    def flops(self, p: Size) -> float:
        return 9.0 * p["N"] ** 3 * p["steps"]

    def description(self, backend: str) -> str:
        common = (
            "3-D 7-point forward-Euler heat step on an N^3 fp32 grid, N a power of two, stored in Z-order:\n"
            "cell (x, y, z) lives at the Morton index whose bit 3b is bit b of x, bit 3b+1 is bit b of y and "
            "bit 3b+2 is bit b of z (logN = log2 N).\n"
            f"  u_out = u + alpha*(sum of 6 neighbours - 6u), alpha = {ALPHA}; face cells copy through.\n"
            "Spreading masks: x -> (x | x<<16) & 0x030000FF, (x | x<<8) & 0x0300F00F, (x | x<<4) & 0x030C30C3, "
            "(x | x<<2) & 0x09249249. Neighbours can be found directly on the index with masked carry/borrow "
            "arithmetic (e.g. x+1: ((m | ~MX) + 1) & MX | (m & ~MX) with MX = 0x09249249).\n"
            "The host ping-pongs u_a -> u_b once per step.\n"
        )
        if backend == "cuda":
            return common + "Launch: 1-D grid of N^3 logical threads in blocks of 256; thread id == Morton index."
        return common + "Each call updates the whole grid (one call per step)."
