"""ising (R3): checkerboard Metropolis on a periodic lattice with a counter-based hash RNG; bit-exact."""

from __future__ import annotations

import math

import numba
import numpy as np

from synthloop.tasks.kernels.spec import Arg, BufferSpec, CheckResult, Entry, KernelTask, Launch, Size

BETA, RNG_SEED = 0.42, 0xC0FFEE01
GOLD = 0x9E3779B9
M32 = np.uint64(0xFFFFFFFF)


def p_accept() -> np.ndarray:
    """Acceptance table indexed by (s*h + 4)/2, computed in fp32 as on the host of the original."""
    return np.array([1.0, 1.0, 1.0, math.exp(-4 * BETA), math.exp(-8 * BETA)], dtype=np.float32)


@numba.njit(inline="always")
def _mix32(x: np.uint64) -> np.uint64:  # pragma: no cover - jitted
    x = x & M32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x85EBCA6B)) & M32
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(0xC2B2AE35)) & M32
    x ^= x >> np.uint64(16)
    return x


@numba.njit(parallel=True, cache=True)
def _sweeps(spins: np.ndarray, n_steps: int, pacc: np.ndarray, seed: int) -> np.ndarray:  # pragma: no cover
    ny, nx = spins.shape
    s = spins.copy()
    for step in range(n_steps):
        colour = step & 1
        h0 = _mix32((np.uint64(seed) + np.uint64(step) * np.uint64(GOLD)) & M32)
        for j in numba.prange(ny):
            for i in range((j + colour) & 1, nx, 2):
                h = (np.int32(s[j, (i - 1) % nx]) + np.int32(s[j, (i + 1) % nx]) + np.int32(s[(j - 1) % ny, i])
                     + np.int32(s[(j + 1) % ny, i]))
                idx = (np.int32(s[j, i]) * h + 4) // 2
                x = _mix32(h0 ^ np.uint64(j * nx + i))
                u = np.float32(x >> np.uint64(8)) * np.float32(1.0 / 16777216.0)
                if u < pacc[idx]:
                    s[j, i] = -s[j, i]
    return s


def sweeps_numpy(spins: np.ndarray, n_steps: int, pacc: np.ndarray, seed: int) -> np.ndarray:
    """Vectorised reference (slow at scale); used to cross-check the jitted one in tests."""
    ny, nx = spins.shape
    s = spins.astype(np.int32).copy()
    jj, ii = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    lin = (jj * nx + ii).astype(np.uint32)

    def mix(x: np.ndarray) -> np.ndarray:
        x = x ^ (x >> np.uint32(16))
        x = x * np.uint32(0x85EBCA6B)
        x = x ^ (x >> np.uint32(13))
        x = x * np.uint32(0xC2B2AE35)
        return x ^ (x >> np.uint32(16))

    with np.errstate(over="ignore"):
        for step in range(n_steps):
            mask = ((ii + jj) & 1) == (step & 1)
            h = np.roll(s, 1, 1) + np.roll(s, -1, 1) + np.roll(s, 1, 0) + np.roll(s, -1, 0)
            idx = (s * h + 4) // 2
            h0 = mix(np.array([(seed + step * GOLD) & 0xFFFFFFFF], dtype=np.uint32))[0]
            u = (mix(h0 ^ lin) >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)
            flip = mask & (u < pacc[idx])
            s[flip] = -s[flip]
    return s.astype(np.int8)


class Ising(KernelTask):
    name = "ising"
    regime = "R3 multi-field"
    unit_note = "effective, 2 B/site/sweep"
    input_seed = 0xBADC0DE
    tolerance_note = "bit-exact: number of differing spins must be 0"

    def entries(self) -> tuple[Entry, ...]:
        return (Entry("ising_step", (Arg("spins", "buffer"), Arg("p_accept", "buffer", const=True),
                                     Arg("NX", "uint"), Arg("NY", "uint"), Arg("step_idx", "uint"),
                                     Arg("seed", "uint"))),)

    def ladder(self, backend: str, split: str) -> list[Size]:
        if backend == "cuda":
            table = {"in": [(4096, 4096, 50), (8192, 8192, 25), (16384, 16384, 10)], "held": [(12288, 6144, 10)]}
        else:
            table = {"in": [(128, 128, 20), (256, 256, 10), (512, 512, 5)], "held": [(384, 192, 8)]}
        return [Size(f"{nx}^2x{s}" if nx == ny else f"{nx}x{ny}x{s}", {"NX": nx, "NY": ny, "sweeps": s})
                for nx, ny, s in table[split]]

    def buffers(self, p: Size) -> list[BufferSpec]:
        return [BufferSpec("spins", "int8", p["NX"] * p["NY"], "inout"), BufferSpec("p_accept", "float32", 5, "in")]

    def init(self, p: Size, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        spins = np.where(rng.random(p["NX"] * p["NY"]) < 0.5, -1, 1).astype(np.int8)
        return {"spins": spins, "p_accept": p_accept()}

    def schedule(self, p: Size, backend: str) -> list[Launch]:
        return [Launch("ising_step", ("spins", "p_accept", p["NX"], p["NY"], s, RNG_SEED), (p["NX"], p["NY"], 1),
                       (16, 16, 1)) for s in range(2 * p["sweeps"])]

    def outputs(self, p: Size) -> dict[str, str]:
        return {"spins": "spins"}

    def reference(self, p: Size, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        s = inputs["spins"].reshape(p["NY"], p["NX"])
        return {"spins": _sweeps(s, 2 * int(p["sweeps"]), inputs["p_accept"], RNG_SEED).ravel()}

    def check(self, p: Size, got: dict[str, np.ndarray], ref: dict[str, np.ndarray],
              inputs: dict[str, np.ndarray]) -> CheckResult:
        g = np.asarray(got["spins"])
        if g.shape != ref["spins"].shape:
            return CheckResult(False, "shape", math.inf, 0.0)
        bad = int(np.count_nonzero(g != ref["spins"]))
        detail = {"first_index": int(np.flatnonzero(g != ref["spins"])[0])} if bad else {}
        return CheckResult(bad == 0, "mismatch", float(bad), 0.0, detail)

    def bytes_moved(self, p: Size) -> float:
        return 2.0 * p["NX"] * p["NY"] * p["sweeps"]

    def flops(self, p: Size) -> float:
        return 0.0

    def description(self, backend: str) -> str:
        common = (
            "Checkerboard Metropolis for the 2-D Ising model (J = 1, beta = 0.42) on a periodic NX x NY lattice of "
            "int8 spins (+1/-1, index j*NX+i; NX, NY even). Call number s (step_idx) updates colour s & 1, where "
            "colour 0 means (i+j) even; the host makes 2 calls per sweep.\n"
            "For a site of the active colour: h = sum of the 4 periodic neighbours; idx = (s_ij*h + 4)/2; "
            "flip iff u < p_accept[idx] (p_accept = [1, 1, 1, e^-4beta, e^-8beta], fp32, precomputed by the host).\n"
            "u: x = seed + step_idx*0x9E3779B9; x = mix32(x); x = mix32(x ^ (j*NX + i)); "
            "u = (x >> 8) * 2^-24 as fp32, mix32 = Murmur3 fmix32 on uint32.\n"
            "The result must be bit-exact.\n"
        )
        if backend == "cuda":
            return common + ("Launch: NX x NY logical threads in 16x16 blocks (padded; guard); threads of the wrong "
                             "colour may exit.")
        return common + "Each call updates every site of the active colour."
