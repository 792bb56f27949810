"""gradshaf (R5 multi-kernel): Grad-Shafranov Picard-Jacobi; a max-reduction then a stencil per outer step."""

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

P_AXIS = 200.0


@numba.njit(parallel=True, cache=True)
def _steps(psi0: np.ndarray, steps: int, p_axis: np.float32) -> np.ndarray:  # pragma: no cover - jitted
    nz, nr = psi0.shape
    a = psi0.copy()
    b = psi0.copy()
    dr = np.float32(1.0) / np.float32(nr - 1)
    dz = np.float32(1.0) / np.float32(nz - 1)
    for _ in range(steps):
        axis = np.float32(-np.inf)
        for j in range(1, nz - 1):
            for i in range(1, nr - 1):
                axis = max(axis, a[j, i])
        for j in numba.prange(nz):
            for i in range(nr):
                if i == 0 or j == 0 or i == nr - 1 or j == nz - 1:
                    b[j, i] = a[j, i]
                    continue
                r = np.float32(1.0) + np.float32(i) * dr
                psi = a[j, i]
                pn = psi / axis
                cur = r * p_axis * np.float32(4.0) * pn * (np.float32(1.0) - pn) if (pn > 0 and pn < 1) else np.float32(0)
                rhs = -r * cur
                idr2 = np.float32(1.0) / (dr * dr)
                idz2 = np.float32(1.0) / (dz * dz)
                half = np.float32(1.0) / (np.float32(2.0) * r * dr)
                a_c = np.float32(-2.0) * idr2 - np.float32(2.0) * idz2
                lap = ((idr2 + half) * a[j, i - 1] + (idr2 - half) * a[j, i + 1] + idz2 * (a[j - 1, i] + a[j + 1, i])
                       + a_c * psi)
                b[j, i] = psi + (rhs - lap) / a_c
        a, b = b, a
    return a


class Gradshaf(KernelTask):
    name = "gradshaf"
    regime = "R5 multi-kernel"
    unit_note = "effective, 12 B/cell per outer step (4 reduce + 8 stencil)"
    input_seed = 0x65AF
    tolerance_note = "max|got-ref| <= 1e-4 + 1e-5*max|ref|"

    def entries(self) -> tuple[Entry, ...]:
        return (
            Entry("gradshaf_axis_reduce", (Arg("psi", "buffer", const=True), Arg("psi_axis", "buffer"),
                                           Arg("NR", "uint"), Arg("NZ", "uint"))),
            Entry("gradshaf_step", (Arg("psi_in", "buffer", const=True), Arg("psi_out", "buffer"),
                                    Arg("psi_axis", "buffer", const=True), Arg("NR", "uint"), Arg("NZ", "uint"),
                                    Arg("p_axis", "float"))),
        )

    def ladder(self, backend: str, split: str) -> list[Size]:
        if backend == "cuda":
            table = {"in": [(1025, 1025, 30), (2049, 2049, 30), (4097, 4097, 20)], "held": [(3073, 1537, 30)]}
        else:
            table = {"in": [(65, 65, 20), (129, 129, 20), (257, 257, 10)], "held": [(193, 97, 15)]}
        return [grid_size((r, z), k, names=("NR", "NZ")) for r, z, k in table[split]]

    def buffers(self, p: Size) -> list[BufferSpec]:
        n = p["NR"] * p["NZ"]
        return [BufferSpec("psi_a", "float32", n, "inout"), BufferSpec("psi_b", "float32", n, "scratch"),
                BufferSpec("psi_axis", "float32", 1, "scratch")]

    def init(self, p: Size, seed: int) -> dict[str, np.ndarray]:
        nr, nz = p["NR"], p["NZ"]
        rng = np.random.default_rng(seed)
        u = np.linspace(0, 1, nr)
        v = np.linspace(0, 1, nz)
        psi = np.sin(np.pi * v)[:, None] * np.sin(np.pi * u)[None, :]
        psi = psi * (1.0 + 0.02 * rng.standard_normal(psi.shape))
        psi[0, :] = psi[-1, :] = 0
        psi[:, 0] = psi[:, -1] = 0
        return {"psi_a": psi.astype(np.float32).ravel()}

    def schedule(self, p: Size, backend: str) -> list[Launch]:
        nr, nz = p["NR"], p["NZ"]
        out = []
        for s in range(p["steps"]):
            src, dst = ping_pong(s, "psi_a", "psi_b")
            out.append(Launch("gradshaf_axis_reduce", (src, "psi_axis", nr, nz), (256, 1, 1), (256, 1, 1)))
            out.append(Launch("gradshaf_step", (src, dst, "psi_axis", nr, nz, P_AXIS), (nr, nz, 1), (16, 16, 1)))
        return out

    def outputs(self, p: Size) -> dict[str, str]:
        return {"psi": after_steps(p["steps"], "psi_a", "psi_b")}

    def reference(self, p: Size, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        psi = inputs["psi_a"].reshape(p["NZ"], p["NR"])
        return {"psi": _steps(psi, int(p["steps"]), np.float32(P_AXIS)).ravel()}

    def check(self, p: Size, got: dict[str, np.ndarray], ref: dict[str, np.ndarray],
              inputs: dict[str, np.ndarray]) -> CheckResult:
        return max_abs_check(got["psi"], ref["psi"], 1e-4, 1e-5, "psi")

    def bytes_moved(self, p: Size) -> float:
        return 12.0 * p["NR"] * p["NZ"] * p["steps"]

    def flops(self, p: Size) -> float:
        return 25.0 * p["NR"] * p["NZ"] * p["steps"]

    def description(self, backend: str) -> str:
        common = (
            "Grad-Shafranov fixed-boundary Picard-Jacobi on R in [1,2], Z in [-0.5,0.5]; psi is (NZ, NR) fp32, "
            "index j*NR+i, R = 1 + i*dR, dR = 1/(NR-1), dZ = 1/(NZ-1). Per outer step the host calls:\n"
            "  gradshaf_axis_reduce: psi_axis[0] = max of psi over the interior (1 <= i <= NR-2, 1 <= j <= NZ-2);\n"
            "  gradshaf_step: for interior cells, pn = psi/psi_axis; J = R*p_axis*4*pn*(1-pn) if 0 < pn < 1 else 0;\n"
            "    rhs = -R*J; aW = 1/dR^2 + 1/(2R dR), aE = 1/dR^2 - 1/(2R dR), aN = aS = 1/dZ^2, "
            "aC = -2/dR^2 - 2/dZ^2;\n"
            "    lap = aW psi_W + aE psi_E + aS psi_S + aN psi_N + aC psi; psi_out = psi + (rhs - lap)/aC.\n"
            f"  Boundary cells copy through. p_axis = {P_AXIS}. psi ping-pongs a -> b once per outer step.\n"
        )
        if backend == "cuda":
            return common + ("Launch: reduce = ONE block of 256 threads (grid 256) that strides the whole interior; "
                             "step = NR x NZ logical threads in 16x16 blocks (padded; guard).")
        return common + "Each call processes the whole grid."
