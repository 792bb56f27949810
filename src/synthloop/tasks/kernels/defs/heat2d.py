"""heat2d (R1 stencil): explicit 5-point heat equation, Dirichlet boundary, ping-pong."""

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
    after_steps,
    grid_size,
    max_abs_check,
    ping_pong,
)

ALPHA = 0.20


@numba.njit(parallel=True, cache=True)
def _steps(u: np.ndarray, steps: int, alpha: np.float32) -> np.ndarray:  # pragma: no cover - jitted
    ny, nx = u.shape
    a = u.copy()
    b = u.copy()
    for _ in range(steps):
        for j in numba.prange(ny):
            for i in range(nx):
                if i == 0 or j == 0 or i == nx - 1 or j == ny - 1:
                    b[j, i] = a[j, i]
                else:
                    c = a[j, i]
                    b[j, i] = c + alpha * (a[j, i - 1] + a[j, i + 1] + a[j - 1, i] + a[j + 1, i] - np.float32(4.0) * c)
        a, b = b, a
    return a


def _size(nx: int, ny: int, steps: int) -> Size:
    return grid_size((nx, ny), steps)


class Heat2d(KernelTask):
    name = "heat2d"
    regime = "R1 stencil"
    unit_note = "effective, 8 B/cell/step"
    input_seed = 0xC0DE
    tolerance_note = "max|got-ref| <= 1e-4 + 1e-5*max|ref|"

    def entries(self) -> tuple[Entry, ...]:
        return (Entry("heat_step", (Arg("u_in", "buffer", const=True), Arg("u_out", "buffer"),
                                    Arg("NX", "uint"), Arg("NY", "uint"), Arg("alpha", "float"))),)

    def ladder(self, backend: str, split: str) -> list[Size]:
        if backend == "cuda":
            table = {"in": [(2048, 2048, 50), (4096, 4096, 50), (8192, 8192, 20)], "held": [(6000, 3000, 40)]}
        else:
            table = {"in": [(128, 128, 50), (256, 256, 50), (512, 512, 20)], "held": [(384, 200, 30)]}
        return [_size(*t) for t in table[split]]

    def buffers(self, p: Size) -> list[BufferSpec]:
        n = p["NX"] * p["NY"]
        return [BufferSpec("u_a", "float32", n, "inout"), BufferSpec("u_b", "float32", n, "scratch")]

    def init(self, p: Size, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        u = rng.random((p["NY"], p["NX"]), dtype=np.float32)
        u[0, :] = 0
        u[-1, :] = 0
        u[:, 0] = 0
        u[:, -1] = 0
        return {"u_a": u.ravel()}

    def schedule(self, p: Size, backend: str) -> list[Launch]:
        out = []
        for s in range(p["steps"]):
            src, dst = ping_pong(s, "u_a", "u_b")
            out.append(Launch("heat_step", (src, dst, p["NX"], p["NY"], ALPHA), (p["NX"], p["NY"], 1), (16, 16, 1)))
        return out

    def outputs(self, p: Size) -> dict[str, str]:
        return {"u": after_steps(p["steps"], "u_a", "u_b")}

    def reference(self, p: Size, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        u = inputs["u_a"].reshape(p["NY"], p["NX"])
        return {"u": _steps(u, int(p["steps"]), np.float32(ALPHA)).ravel()}

    def check(self, p: Size, got: dict[str, np.ndarray], ref: dict[str, np.ndarray],
              inputs: dict[str, np.ndarray]) -> CheckResult:
        return max_abs_check(got["u"], ref["u"], 1e-4, 1e-5, "u")

    def bytes_moved(self, p: Size) -> float:
        return 8.0 * p["NX"] * p["NY"] * p["steps"]

    def flops(self, p: Size) -> float:
        return 7.0 * p["NX"] * p["NY"] * p["steps"]

    def description(self, backend: str) -> str:
        common = (
            f"Explicit heat step on an NX x NY fp32 grid (row-major, x fastest, index j*NX+i):\n"
            f"  u_out = u + alpha*(u[W] + u[E] + u[S] + u[N] - 4u), alpha = {ALPHA}.\n"
            "Boundary cells (i==0, j==0, i==NX-1, j==NY-1) copy u_in through unchanged.\n"
            "The host runs `steps` calls per repetition, ping-ponging u_a -> u_b -> u_a ...; "
            "the initial state is U[0,1) with a zero boundary; u_b starts zeroed.\n"
        )
        if backend == "cuda":
            return common + ("Launch: 2-D grid of NX x NY logical threads in 16x16 blocks; the grid is padded to "
                             "block multiples, so guard i < NX and j < NY. One kernel launch per step "
                             "(replayed from a CUDA graph).")
        return common + "Each call updates the whole grid (one call per step)."
