"""nbody (R2 compute): all-pairs gravity with softening, symplectic Euler, float4 storage."""

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
    combine_checks,
    max_abs_check,
    ping_pong,
)

DT, EPS, G = 1e-3, 0.05, 1.0


@numba.njit(parallel=True, cache=True)
def _steps(pos: np.ndarray, vel: np.ndarray, mass: np.ndarray, steps: int, dt: float, eps: float,
           g: float) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - jitted
    n = pos.shape[0]
    p = pos.copy()
    v = vel.copy()
    e2 = eps * eps
    for _ in range(steps):
        p_new = p.copy()
        v_new = v.copy()
        for i in numba.prange(n):
            ax = 0.0
            ay = 0.0
            az = 0.0
            xi = np.float64(p[i, 0])
            yi = np.float64(p[i, 1])
            zi = np.float64(p[i, 2])
            for j in range(n):
                dx = np.float64(p[j, 0]) - xi
                dy = np.float64(p[j, 1]) - yi
                dz = np.float64(p[j, 2]) - zi
                r2 = dx * dx + dy * dy + dz * dz + e2
                inv = np.float64(mass[j]) / (r2 * np.sqrt(r2))
                ax += dx * inv
                ay += dy * inv
                az += dz * inv
            for c, a in ((0, ax), (1, ay), (2, az)):
                vn = np.float32(v[i, c] + np.float32(g * a * dt))
                v_new[i, c] = vn
                p_new[i, c] = np.float32(p[i, c] + vn * np.float32(dt))
        p = p_new
        v = v_new
    return p, v


class Nbody(KernelTask):
    name = "nbody"
    regime = "R2 compute"
    unit = "GFLOP/s"
    unit_note = "20 FLOP per pair, N^2 pairs per step"
    input_seed = 0xCAFE
    tolerance_note = "positions: max abs <= 1e-3 + 1e-3*max|ref_pos|; velocities likewise (xyz only)"

    def entries(self) -> tuple[Entry, ...]:
        return (Entry("nbody_step", (Arg("pos_in", "buffer", const=True), Arg("pos_out", "buffer"),
                                     Arg("vel_in", "buffer", const=True), Arg("vel_out", "buffer"),
                                     Arg("mass", "buffer", const=True), Arg("N", "uint"), Arg("dt", "float"),
                                     Arg("eps", "float"), Arg("G", "float"))),)

    def ladder(self, backend: str, split: str) -> list[Size]:
        if backend == "cuda":
            table = {"in": [(8192, 10), (32768, 4), (65536, 2)], "held": [(24000, 4)]}
        else:
            table = {"in": [(256, 5), (512, 4), (1024, 2)], "held": [(700, 3)]}
        return [Size(f"N={n}x{s}", {"N": n, "steps": s}) for n, s in table[split]]

    def buffers(self, p: Size) -> list[BufferSpec]:
        n = p["N"]
        return [BufferSpec("pos_a", "float32", 4 * n, "inout"), BufferSpec("pos_b", "float32", 4 * n, "scratch"),
                BufferSpec("vel_a", "float32", 4 * n, "inout"), BufferSpec("vel_b", "float32", 4 * n, "scratch"),
                BufferSpec("mass", "float32", n, "in")]

    def init(self, p: Size, seed: int) -> dict[str, np.ndarray]:
        n = p["N"]
        rng = np.random.default_rng(seed)
        pos = np.zeros((n, 4), np.float32)
        vel = np.zeros((n, 4), np.float32)
        pos[:, :3] = rng.uniform(-1, 1, (n, 3))
        vel[:, :3] = rng.uniform(-0.01, 0.01, (n, 3))
        mass = rng.uniform(0.5, 1.5, n).astype(np.float32)
        return {"pos_a": pos.ravel(), "vel_a": vel.ravel(), "mass": mass}

    def schedule(self, p: Size, backend: str) -> list[Launch]:
        out = []
        for s in range(p["steps"]):
            a, b = ping_pong(s, "a", "b")
            out.append(Launch("nbody_step", (f"pos_{a}", f"pos_{b}", f"vel_{a}", f"vel_{b}", "mass", p["N"], DT, EPS, G),
                              (p["N"], 1, 1), (128, 1, 1)))
        return out

    def outputs(self, p: Size) -> dict[str, str]:
        last = after_steps(p["steps"], "a", "b")
        return {"pos": f"pos_{last}", "vel": f"vel_{last}"}

    def reference(self, p: Size, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = p["N"]
        pos, vel = _steps(inputs["pos_a"].reshape(n, 4), inputs["vel_a"].reshape(n, 4), inputs["mass"],
                          int(p["steps"]), DT, EPS, G)
        return {"pos": pos.ravel(), "vel": vel.ravel()}

    def check(self, p: Size, got: dict[str, np.ndarray], ref: dict[str, np.ndarray],
              inputs: dict[str, np.ndarray]) -> CheckResult:
        n = p["N"]
        checks = []
        for key in ("pos", "vel"):
            g = np.asarray(got[key]).reshape(n, 4)[:, :3]
            r = ref[key].reshape(n, 4)[:, :3]
            checks.append(max_abs_check(g, r, 1e-3, 1e-3, key))
        return combine_checks(checks)

    def bytes_moved(self, p: Size) -> float:
        return 68.0 * p["N"] * p["steps"]

    def flops(self, p: Size) -> float:
        return 20.0 * p["N"] ** 2 * p["steps"]

    def description(self, backend: str) -> str:
        common = (
            "All-pairs gravity: a_i = G sum_j m_j (r_j - r_i) / (|r_j - r_i|^2 + eps^2)^(3/2) (self pair included; "
            "it contributes zero), then v += a*dt, r += v*dt (new v).\n"
            f"dt = {DT}, eps = {EPS}, G = {G}. Positions and velocities are float4 (xyz, w = 0 padding), mass is a "
            "separate float array. The host ping-pongs (pos, vel) a -> b once per step.\n"
            "Both final positions and final velocities are checked.\n"
        )
        if backend == "cuda":
            return common + "Launch: 1-D grid of N logical threads in blocks of 128 (padded; guard i < N)."
        return common + "Each call advances all N bodies one step."
