"""lbm (R3 multi-field): D2Q9 fused pull-stream + BGK collision, periodic, SoA."""

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
    gaussian_bump,
    grid_size,
    max_abs_check,
    ping_pong,
)

TAU = 0.8
CX = np.array([0, 1, 0, -1, 0, 1, -1, -1, 1], dtype=np.int64)
CY = np.array([0, 0, 1, 0, -1, 1, 1, -1, -1], dtype=np.int64)
W = np.array([4 / 9] + [1 / 9] * 4 + [1 / 36] * 4, dtype=np.float32)


@numba.njit(parallel=True, cache=True)
def _steps(f0: np.ndarray, steps: int, tau: np.float32, cx: np.ndarray, cy: np.ndarray,
           w: np.ndarray) -> np.ndarray:  # pragma: no cover - jitted
    _, ny, nx = f0.shape
    a = f0.copy()
    b = np.empty_like(f0)
    inv_tau = np.float32(1.0) / tau
    for _ in range(steps):
        for j in numba.prange(ny):
            fs = np.empty(9, dtype=np.float32)
            for i in range(nx):
                rho = np.float32(0.0)
                ux = np.float32(0.0)
                uy = np.float32(0.0)
                for k in range(9):
                    v = a[k, (j - cy[k]) % ny, (i - cx[k]) % nx]
                    fs[k] = v
                    rho += v
                    ux += np.float32(cx[k]) * v
                    uy += np.float32(cy[k]) * v
                ux /= rho
                uy /= rho
                usq = ux * ux + uy * uy
                for k in range(9):
                    cu = np.float32(cx[k]) * ux + np.float32(cy[k]) * uy
                    feq = w[k] * rho * (np.float32(1.0) + np.float32(3.0) * cu + np.float32(4.5) * cu * cu
                                        - np.float32(1.5) * usq)
                    b[k, j, i] = fs[k] - (fs[k] - feq) * inv_tau
        a, b = b, a
    return a


def _size(nx: int, ny: int, steps: int) -> Size:
    return grid_size((nx, ny), steps)


class Lbm(KernelTask):
    name = "lbm"
    regime = "R3 multi-field"
    unit_note = "effective, 72 B/cell/step"
    input_seed = 0x1B77
    tolerance_note = "max|got-ref| over all 9 fields <= 5e-4 + 1e-4*max|ref|"

    def entries(self) -> tuple[Entry, ...]:
        return (Entry("lbm_step", (Arg("f_in", "buffer", const=True), Arg("f_out", "buffer"),
                                   Arg("NX", "uint"), Arg("NY", "uint"), Arg("tau", "float"))),)

    def ladder(self, backend: str, split: str) -> list[Size]:
        if backend == "cuda":
            table = {"in": [(512, 512, 100), (1024, 1024, 50), (2048, 2048, 25)], "held": [(1536, 768, 50)]}
        else:
            table = {"in": [(64, 64, 20), (128, 128, 20), (256, 256, 10)], "held": [(192, 96, 15)]}
        return [_size(*t) for t in table[split]]

    def buffers(self, p: Size) -> list[BufferSpec]:
        n = 9 * p["NX"] * p["NY"]
        return [BufferSpec("f_a", "float32", n, "inout"), BufferSpec("f_b", "float32", n, "scratch")]

    def init(self, p: Size, seed: int) -> dict[str, np.ndarray]:
        shape = (p["NY"], p["NX"])
        rng = np.random.default_rng(seed)
        rho = 1.0 + 0.05 * gaussian_bump(shape, 0.15 * min(shape)) + 0.01 * rng.random(shape)
        f = W.astype(np.float64)[:, None, None] * rho[None]
        return {"f_a": f.astype(np.float32).ravel()}

    def schedule(self, p: Size, backend: str) -> list[Launch]:
        out = []
        for s in range(p["steps"]):
            src, dst = ping_pong(s, "f_a", "f_b")
            out.append(Launch("lbm_step", (src, dst, p["NX"], p["NY"], TAU), (p["NX"], p["NY"], 1), (16, 16, 1)))
        return out

    def outputs(self, p: Size) -> dict[str, str]:
        return {"f": after_steps(p["steps"], "f_a", "f_b")}

    def reference(self, p: Size, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        f = inputs["f_a"].reshape(9, p["NY"], p["NX"])
        return {"f": _steps(f, int(p["steps"]), np.float32(TAU), CX, CY, W).ravel()}

    def check(self, p: Size, got: dict[str, np.ndarray], ref: dict[str, np.ndarray],
              inputs: dict[str, np.ndarray]) -> CheckResult:
        return max_abs_check(got["f"], ref["f"], 5e-4, 1e-4, "f")

    def bytes_moved(self, p: Size) -> float:
        return 72.0 * p["NX"] * p["NY"] * p["steps"]

    def flops(self, p: Size) -> float:
        return 150.0 * p["NX"] * p["NY"] * p["steps"]

    def description(self, backend: str) -> str:
        common = (
            "D2Q9 lattice Boltzmann, fused periodic pull-stream + BGK, fp32, SoA layout "
            "f[k*NX*NY + j*NX + i] for k = 0..8.\n"
            "c = {(0,0),(1,0),(0,1),(-1,0),(0,-1),(1,1),(-1,1),(-1,-1),(1,-1)}; "
            "w = {4/9, 1/9 x4, 1/36 x4}.\n"
            "Per cell: f*_k = f_in_k(i-cx_k, j-cy_k) (periodic wrap); rho = sum f*; u = sum c f* / rho;\n"
            "f_eq = w rho (1 + 3 c.u + 4.5 (c.u)^2 - 1.5 |u|^2); f_out = f* - (f* - f_eq)/tau, "
            f"tau = {TAU}.\n"
            "The host ping-pongs f_a -> f_b -> f_a ... once per step.\n"
        )
        if backend == "cuda":
            return common + "Launch: NX x NY logical threads in 16x16 blocks (padded; guard). One launch per step."
        return common + "Each call updates the whole lattice (one call per step)."
