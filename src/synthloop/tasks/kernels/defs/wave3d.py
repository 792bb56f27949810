"""wave3d (R1 stencil): leapfrog 3-D wave equation with a triple buffer."""

from __future__ import annotations

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
    gaussian_bump,
    grid_size,
    max_abs_check,
    zero_faces,
)

ALPHA = 0.18
BUFS = ("b0", "b1", "b2")


@numba.njit(parallel=True, cache=True)
def _steps(u0: np.ndarray, steps: int, alpha: np.float32) -> np.ndarray:  # pragma: no cover - jitted
    nz, ny, nx = u0.shape
    b = [u0.copy(), u0.copy(), np.zeros_like(u0)]
    for s in range(steps):
        prev = b[s % 3]
        cur = b[(s + 1) % 3]
        nxt = b[(s + 2) % 3]
        for k in numba.prange(nz):
            for j in range(ny):
                for i in range(nx):
                    c = cur[k, j, i]
                    if i == 0 or j == 0 or k == 0 or i == nx - 1 or j == ny - 1 or k == nz - 1:
                        nxt[k, j, i] = c
                    else:
                        lap = (cur[k, j, i - 1] + cur[k, j, i + 1] + cur[k, j - 1, i] + cur[k, j + 1, i]
                               + cur[k - 1, j, i] + cur[k + 1, j, i] - np.float32(6.0) * c)
                        nxt[k, j, i] = np.float32(2.0) * c - prev[k, j, i] + alpha * lap
    return b[(steps + 1) % 3]


def _size(nx: int, ny: int, nz: int, steps: int) -> Size:
    return grid_size((nx, ny, nz), steps)


class Wave3d(KernelTask):
    name = "wave3d"
    regime = "R1 stencil"
    unit_note = "effective, 12 B/cell/step"
    input_seed = 0x3D3D
    tolerance_note = "max|got-ref| <= 1e-4 + 1e-5*max|ref|"

    def entries(self) -> tuple[Entry, ...]:
        return (Entry("wave_step", (Arg("u_prev", "buffer", const=True), Arg("u_curr", "buffer", const=True),
                                    Arg("u_next", "buffer"), Arg("NX", "uint"), Arg("NY", "uint"),
                                    Arg("NZ", "uint"), Arg("alpha", "float"))),)

    def ladder(self, backend: str, split: str) -> list[Size]:
        if backend == "cuda":
            table = {"in": [(256,) * 3 + (20,), (384,) * 3 + (15,), (512,) * 3 + (10,)], "held": [(320, 288, 256, 15)]}
        else:
            table = {"in": [(32,) * 3 + (20,), (64,) * 3 + (10,), (96,) * 3 + (5,)], "held": [(40, 36, 48, 8)]}
        return [_size(*t) for t in table[split]]

    def buffers(self, p: Size) -> list[BufferSpec]:
        n = p["NX"] * p["NY"] * p["NZ"]
        return [BufferSpec("b0", "float32", n, "inout"), BufferSpec("b1", "float32", n, "inout"),
                BufferSpec("b2", "float32", n, "scratch")]

    def init(self, p: Size, seed: int) -> dict[str, np.ndarray]:
        shape = (p["NZ"], p["NY"], p["NX"])
        rng = np.random.default_rng(seed)
        u = gaussian_bump(shape, 0.1 * min(shape)) * (np.float32(1.0) + np.float32(0.05) * rng.standard_normal(shape, dtype=np.float32))
        u = zero_faces(u.astype(np.float32)).ravel()
        return {"b0": u, "b1": u.copy()}

    def schedule(self, p: Size, backend: str) -> list[Launch]:
        grid = (p["NX"], p["NY"], p["NZ"])
        return [Launch("wave_step", (BUFS[s % 3], BUFS[(s + 1) % 3], BUFS[(s + 2) % 3], p["NX"], p["NY"], p["NZ"],
                                     ALPHA), grid, (8, 8, 4)) for s in range(p["steps"])]

    def outputs(self, p: Size) -> dict[str, str]:
        return {"u": BUFS[(p["steps"] + 1) % 3]}

    def reference(self, p: Size, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        u = inputs["b0"].reshape(p["NZ"], p["NY"], p["NX"])
        return {"u": _steps(u, int(p["steps"]), np.float32(ALPHA)).ravel()}

    def check(self, p: Size, got: dict[str, np.ndarray], ref: dict[str, np.ndarray],
              inputs: dict[str, np.ndarray]) -> CheckResult:
        return max_abs_check(got["u"], ref["u"], 1e-4, 1e-5, "u")

    def bytes_moved(self, p: Size) -> float:
        return 12.0 * p["NX"] * p["NY"] * p["NZ"] * p["steps"]

    def flops(self, p: Size) -> float:
        return 10.0 * p["NX"] * p["NY"] * p["NZ"] * p["steps"]

    def description(self, backend: str) -> str:
        common = (
            "Leapfrog wave equation on an NX x NY x NZ fp32 grid (index (k*NY+j)*NX+i):\n"
            f"  u_next = 2u - u_prev + alpha*(sum of 6 neighbours of u - 6u), alpha = {ALPHA}, u = u_curr.\n"
            "Face cells copy u_curr. Triple buffer: step s binds (u_prev, u_curr, u_next) = "
            "(b[s%3], b[(s+1)%3], b[(s+2)%3]); the result is b[(steps+1)%3].\n"
            "b0 = b1 = Gaussian bump (zero initial velocity), b2 zeroed. NaN anywhere fails the check.\n"
        )
        if backend == "cuda":
            return common + ("Launch: 3-D grid NX x NY x NZ logical threads in 8x8x4 blocks (padded; guard all "
                             "three indices). One launch per step.")
        return common + "Each call updates the whole grid (one call per step)."
