"""adi3d (R7 wavefront): LOD-ADI heat step, tridiagonal (Thomas) solves along x, then y, then z."""

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
    max_abs_check,
    zero_faces,
)

MU = 0.5


@numba.njit(parallel=True, cache=True)
def adi_pass(u: np.ndarray, axis: int, mu: float) -> np.ndarray:  # pragma: no cover - jitted
    """One directional pass on a (z, y, x) fp32 array, Thomas in fp64 per line.

    ``axis`` is 2 for x-lines, 1 for y-lines, 0 for z-lines. Line endpoints are Dirichlet values copied from
    the input; lines whose off-axis indices touch a face are copied unchanged."""
    nz, ny, nx = u.shape
    out = u.copy()
    shape = (nz, ny, nx)
    n = shape[axis]
    # the two off-axis extents, in (outer, inner) order
    if axis == 2:
        d0, d1 = nz, ny
    elif axis == 1:
        d0, d1 = nz, nx
    else:
        d0, d1 = ny, nx
    b = 1.0 + 2.0 * mu
    cp = np.empty(n)
    cp[1] = -mu / b
    for i in range(2, n - 1):
        cp[i] = -mu / (b + mu * cp[i - 1])
    for a0 in numba.prange(d0):
        dp = np.empty(n)
        for a1 in range(d1):
            if a0 == 0 or a1 == 0 or a0 == d0 - 1 or a1 == d1 - 1:
                continue
            line = np.empty(n)
            for i in range(n):
                if axis == 2:
                    line[i] = u[a0, a1, i]
                elif axis == 1:
                    line[i] = u[a0, i, a1]
                else:
                    line[i] = u[i, a0, a1]
            for i in range(1, n - 1):
                rhs = line[i]
                if i == 1:
                    rhs += mu * line[0]
                if i == n - 2:
                    rhs += mu * line[n - 1]
                if i == 1:
                    dp[i] = rhs / b
                else:
                    dp[i] = (rhs + mu * dp[i - 1]) / (b + mu * cp[i - 1])
            v = line.copy()
            v[n - 2] = dp[n - 2]
            for i in range(n - 3, 0, -1):
                v[i] = dp[i] - cp[i] * v[i + 1]
            for i in range(1, n - 1):
                if axis == 2:
                    out[a0, a1, i] = np.float32(v[i])
                elif axis == 1:
                    out[a0, i, a1] = np.float32(v[i])
                else:
                    out[i, a0, a1] = np.float32(v[i])
    return out


class Adi3d(KernelTask):
    name = "adi3d"
    regime = "R7 wavefront"
    unit_note = "effective, 24 B/cell/step (8 per sweep)"
    input_seed = 0xAD13
    tolerance_note = "max|got-ref| <= 1e-3 + 1e-3*max|ref|"

    def entries(self) -> tuple[Entry, ...]:
        args = (Arg("u_in", "buffer", const=True), Arg("u_out", "buffer"), Arg("NX", "uint"), Arg("NY", "uint"),
                Arg("NZ", "uint"), Arg("mu", "float"))
        return tuple(Entry(f"adi_{ax}", args) for ax in "xyz")

    def ladder(self, backend: str, split: str) -> list[Size]:
        if backend == "cuda":
            table = {"in": [(128,) * 3 + (10,), (192,) * 3 + (10,), (256,) * 3 + (10,)], "held": [(512, 384, 192, 5)]}
        else:
            table = {"in": [(32,) * 3 + (4,), (48,) * 3 + (3,), (64,) * 3 + (2,)], "held": [(40, 36, 28, 2)]}
        return [Size(f"{x}^3x{s}" if x == y == z else f"{x}x{y}x{z}x{s}", {"NX": x, "NY": y, "NZ": z, "steps": s})
                for x, y, z, s in table[split]]

    def buffers(self, p: Size) -> list[BufferSpec]:
        n = p["NX"] * p["NY"] * p["NZ"]
        return [BufferSpec("u_a", "float32", n, "inout"), BufferSpec("u_b", "float32", n, "scratch")]

    def init(self, p: Size, seed: int) -> dict[str, np.ndarray]:
        shape = (p["NZ"], p["NY"], p["NX"])
        rng = np.random.default_rng(seed)
        sigma = 0.15 * float(np.prod(shape)) ** (1.0 / 3.0)
        u = gaussian_bump(shape, sigma) * (np.float32(1.0) + np.float32(0.05) * rng.standard_normal(shape, dtype=np.float32))
        return {"u_a": zero_faces(u.astype(np.float32)).ravel()}

    def schedule(self, p: Size, backend: str) -> list[Launch]:
        nx, ny, nz = p["NX"], p["NY"], p["NZ"]
        grids = {"x": (ny, nz, 1), "y": (nx, nz, 1), "z": (nx, ny, 1)}
        out = []
        bufs = ("u_a", "u_b")
        k = 0
        for _ in range(p["steps"]):
            for ax in "xyz":
                out.append(Launch(f"adi_{ax}", (bufs[k % 2], bufs[(k + 1) % 2], nx, ny, nz, MU), grids[ax], (32, 1, 1)))
                k += 1
        return out

    def outputs(self, p: Size) -> dict[str, str]:
        return {"u": after_steps(p["steps"], "u_a", "u_b")}

    def reference(self, p: Size, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        u = inputs["u_a"].reshape(p["NZ"], p["NY"], p["NX"])
        for _ in range(p["steps"]):
            for axis in (2, 1, 0):
                u = adi_pass(u, axis, MU)
        return {"u": u.ravel()}

    def check(self, p: Size, got: dict[str, np.ndarray], ref: dict[str, np.ndarray],
              inputs: dict[str, np.ndarray]) -> CheckResult:
        return max_abs_check(got["u"], ref["u"], 1e-3, 1e-3, "u")

    def bytes_moved(self, p: Size) -> float:
        return 24.0 * p["NX"] * p["NY"] * p["NZ"] * p["steps"]

    def flops(self, p: Size) -> float:
        return 3 * 8.0 * p["NX"] * p["NY"] * p["NZ"] * p["steps"]

    def description(self, backend: str) -> str:
        common = (
            "LOD-ADI heat step on an NX x NY x NZ fp32 grid (index (k*NY+j)*NX+i), mu = 0.5: per step the host "
            "calls adi_x, adi_y, adi_z, each solving (I - mu D2) v = u_in along its axis for every line "
            "(tridiagonal -mu, 1+2mu, -mu), ping-ponging u_a -> u_b -> u_a ... (3 calls per step; result in u_a "
            "when steps is even).\n"
            "On a line, the two endpoints are Dirichlet values copied from u_in (and act as sources for the first "
            "and last interior unknowns). Lines whose two off-axis indices touch a face (e.g. for adi_x: j == 0, "
            "j == NY-1, k == 0 or k == NZ-1) are copied unchanged. Sizes may be non-cubic.\n"
        )
        if backend == "cuda":
            return common + ("Launch: one logical thread per line in blocks of (32,1,1): adi_x grid (NY, NZ) with "
                             "(j, k) = (blockIdx.x*32+threadIdx.x, blockIdx.y); adi_y grid (NX, NZ) -> (i, k); "
                             "adi_z grid (NX, NY) -> (i, j); padded in x, so guard.")
        return common + "Each call solves all lines along its axis."
