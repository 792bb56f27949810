"""lj (R4 atomics): Lennard-Jones MD with cell lists (clear, build, step: three calls per step)."""

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

DT, RC, DENSITY, MAX_PER_CELL = 0.005, 2.5, 0.657, 64
_P0: dict[str, int] = {}


def lj_size(k: int, steps: int) -> Size:
    """N = k^3 particles at density 0.657; M = floor(L / 2.5) cells per axis."""
    n = k ** 3
    box = (n / DENSITY) ** (1.0 / 3.0)
    m = int(box // RC)
    if m < 3:
        raise ValueError(f"lj needs at least 3 cells per axis (got {m} for N={n}); use k >= 8")
    return Size(f"N={n}x{steps}", {"K": k, "N": n, "M": m, "L": float(np.float32(box)), "steps": steps})


@numba.njit(cache=True)
def _cell_of(x: float, box: float, m: int) -> int:  # pragma: no cover - jitted
    w = x - box * np.floor(x / box)
    return min(int(w / (box / m)), m - 1)


@numba.njit(cache=True)
def _cells(pos: np.ndarray, m: int, box: float) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - jitted
    n = pos.shape[0]
    count = np.zeros(m * m * m, np.int64)
    lst = np.empty((m * m * m, 256), np.int64)
    for i in range(n):
        c = _cell_of(pos[i, 0], box, m) + _cell_of(pos[i, 1], box, m) * m + _cell_of(pos[i, 2], box, m) * m * m
        lst[c, count[c]] = i
        count[c] += 1
    return count, lst


@numba.njit(parallel=True, cache=True)
def _forces(pos: np.ndarray, m: int, box: float, count_only: bool) -> np.ndarray:  # pragma: no cover - jitted
    """Cell-list LJ forces in fp64 (or, with count_only, the number of partners within r_c in column 0)."""
    n = pos.shape[0]
    count, lst = _cells(pos, m, box)
    f = np.zeros((n, 3))
    rc2 = RC * RC
    for i in numba.prange(n):
        cx = _cell_of(pos[i, 0], box, m)
        cy = _cell_of(pos[i, 1], box, m)
        cz = _cell_of(pos[i, 2], box, m)
        fx = 0.0
        fy = 0.0
        fz = 0.0
        for dz in range(-1, 2):
            for dy in range(-1, 2):
                for dx in range(-1, 2):
                    c = ((cx + dx) % m) + ((cy + dy) % m) * m + ((cz + dz) % m) * m * m
                    for t in range(count[c]):
                        j = lst[c, t]
                        rx = pos[j, 0] - pos[i, 0]
                        ry = pos[j, 1] - pos[i, 1]
                        rz = pos[j, 2] - pos[i, 2]
                        rx -= box * np.round(rx / box)
                        ry -= box * np.round(ry / box)
                        rz -= box * np.round(rz / box)
                        r2 = rx * rx + ry * ry + rz * rz
                        if r2 < rc2 and r2 > 1e-12:
                            if count_only:
                                fx += 1.0
                                continue
                            inv2 = 1.0 / r2
                            inv6 = inv2 * inv2 * inv2
                            s = -24.0 * (2.0 * inv6 * inv6 - inv6) * inv2
                            fx += s * rx
                            fy += s * ry
                            fz += s * rz
        f[i, 0] = fx
        f[i, 1] = fy
        f[i, 2] = fz
    return f


class Lj(KernelTask):
    name = "lj"
    regime = "R4 atomics"
    unit = "GFLOP/s"
    unit_note = "2*P0*20 FLOP per step, P0 = pairs within r_c at t=0"
    input_seed = 0xCAFE
    tolerance_note = "final unwrapped positions: max abs <= 1e-4 (velocities <= 1e-3 + 1e-3*max|v|); any cell count > 64 fails"

    def entries(self) -> tuple[Entry, ...]:
        return (
            Entry("lj_clear_cells", (Arg("cell_count", "buffer"), Arg("n_cells", "uint"))),
            Entry("lj_build_cells", (Arg("pos", "buffer", const=True), Arg("cell_count", "buffer"),
                                     Arg("cell_list", "buffer"), Arg("N", "uint"), Arg("M", "uint"),
                                     Arg("L", "float"))),
            Entry("lj_step", (Arg("pos_in", "buffer", const=True), Arg("pos_out", "buffer"),
                              Arg("vel_in", "buffer", const=True), Arg("vel_out", "buffer"),
                              Arg("cell_count", "buffer", const=True), Arg("cell_list", "buffer", const=True),
                              Arg("N", "uint"), Arg("M", "uint"), Arg("L", "float"), Arg("dt", "float"))),
        )

    def ladder(self, backend: str, split: str) -> list[Size]:
        if backend == "cuda":
            table = {"in": [(32, 10), (48, 8), (64, 6)], "held": [(42, 8)]}
        else:
            table = {"in": [(12, 10), (16, 6), (22, 3)], "held": [(14, 5)]}
        return [lj_size(k, s) for k, s in table[split]]

    def buffers(self, p: Size) -> list[BufferSpec]:
        n, m3 = p["N"], p["M"] ** 3
        return [BufferSpec("pos_a", "float32", 4 * n, "inout"), BufferSpec("pos_b", "float32", 4 * n, "scratch"),
                BufferSpec("vel_a", "float32", 4 * n, "inout"), BufferSpec("vel_b", "float32", 4 * n, "scratch"),
                BufferSpec("cell_count", "uint32", m3, "counter"),
                BufferSpec("cell_list", "uint32", m3 * MAX_PER_CELL, "scratch")]

    def init(self, p: Size, seed: int) -> dict[str, np.ndarray]:
        k, n, box = p["K"], p["N"], p["L"]
        rng = np.random.default_rng(seed)
        a = box / k
        g = (np.arange(k) + 0.5) * a
        lat = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(n, 3)
        lat = lat + rng.uniform(-0.05 * a, 0.05 * a, (n, 3))
        lat = lat - box * np.floor(lat / box)
        vel = rng.uniform(-0.3, 0.3, (n, 3))
        vel -= vel.mean(axis=0)
        pos4 = np.zeros((n, 4), np.float32)
        vel4 = np.zeros((n, 4), np.float32)
        pos4[:, :3] = lat
        vel4[:, :3] = vel
        return {"pos_a": pos4.ravel(), "vel_a": vel4.ravel()}

    def schedule(self, p: Size, backend: str) -> list[Launch]:
        n, m, box = p["N"], p["M"], p["L"]
        out = []
        for s in range(p["steps"]):
            a, b = ping_pong(s, "a", "b")
            out.append(Launch("lj_clear_cells", ("cell_count", m ** 3), (m ** 3, 1, 1), (64, 1, 1)))
            out.append(Launch("lj_build_cells", (f"pos_{a}", "cell_count", "cell_list", n, m, box), (n, 1, 1),
                              (128, 1, 1)))
            out.append(Launch("lj_step", (f"pos_{a}", f"pos_{b}", f"vel_{a}", f"vel_{b}", "cell_count", "cell_list",
                                          n, m, box, DT), (n, 1, 1), (128, 1, 1)))
        return out

    def outputs(self, p: Size) -> dict[str, str]:
        last = after_steps(p["steps"], "a", "b")
        return {"pos": f"pos_{last}", "vel": f"vel_{last}", "cell_count": "cell_count"}

    def reference(self, p: Size, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = p["N"]
        pos = inputs["pos_a"].reshape(n, 4).copy()
        vel = inputs["vel_a"].reshape(n, 4).copy()
        dt = np.float32(DT)
        for _ in range(p["steps"]):
            f = _forces(pos[:, :3].astype(np.float64), p["M"], float(p["L"]), False)
            vel[:, :3] = vel[:, :3] + f.astype(np.float32) * dt
            pos[:, :3] = pos[:, :3] + vel[:, :3] * dt
        return {"pos": pos.ravel(), "vel": vel.ravel()}

    def check(self, p: Size, got: dict[str, np.ndarray], ref: dict[str, np.ndarray],
              inputs: dict[str, np.ndarray]) -> CheckResult:
        counts = np.asarray(got.get("cell_count", np.zeros(0, np.uint32)))
        if counts.size and int(counts.max()) > MAX_PER_CELL:
            return CheckResult(False, "cell_overflow", float(counts.max()), float(MAX_PER_CELL))
        n = p["N"]
        gp = np.asarray(got["pos"]).reshape(n, 4)[:, :3]
        gv = np.asarray(got["vel"]).reshape(n, 4)[:, :3]
        return combine_checks([max_abs_check(gp, ref["pos"].reshape(n, 4)[:, :3], 1e-4, 0.0, "pos"),
                               max_abs_check(gv, ref["vel"].reshape(n, 4)[:, :3], 1e-3, 1e-3, "vel")])

    def pairs_at_t0(self, p: Size) -> int:
        """P0 of the work model (variant-0 inputs), computed once per size."""
        key = p.key()
        if key not in _P0:
            pos = self.init(p, self.input_seed)["pos_a"].reshape(p["N"], 4)[:, :3].astype(np.float64)
            _P0[key] = int(round(_forces(pos, p["M"], float(p["L"]), True)[:, 0].sum() / 2))
        return _P0[key]

    def bytes_moved(self, p: Size) -> float:
        return 64.0 * p["N"] * p["steps"]

    def flops(self, p: Size) -> float:
        return 2.0 * self.pairs_at_t0(p) * 20.0 * p["steps"]

    def description(self, backend: str) -> str:
        common = (
            "Lennard-Jones MD (sigma = eps = m = 1, r_c = 2.5) in a periodic cube of side L with minimum image; "
            f"N particles as float4 (xyz, w = 0); dt = {DT}. Three calls per step, in order:\n"
            "  lj_clear_cells: zero the M^3 cell counters;\n"
            "  lj_build_cells: wrap each position into [0, L), cell = min(floor(r / (L/M)), M-1) per axis, "
            "linear cell = cx + cy*M + cz*M*M; slot = count[cell]++ (atomically where threads race); store the "
            "particle index at cell_list[cell*64 + slot] if slot < 64;\n"
            "  lj_step: for each particle visit the 27 neighbour cells (periodic wrap), sum "
            "F += -24(2 r^-12 - r^-6) r^-2 d for d = r_j - r_i (minimum image) with 1e-12 < r^2 < r_c^2; then "
            "v += F dt, r += v dt. Positions stay unwrapped. pos/vel ping-pong a -> b once per step.\n"
            "Any cell count above 64 fails the check (dropped particles).\n"
        )
        if backend == "cuda":
            return common + ("Launch: clear with M^3 threads (blocks of 64); build and step with N threads (blocks "
                             "of 128); all padded, guard the index. Use atomicAdd for the counters.")
        return common + "Each call processes all cells / particles (a serial or parallel build is fine)."
