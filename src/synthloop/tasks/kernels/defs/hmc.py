"""hmc (R2 compute): K independent HMC chains sampling N(0, Sigma); statistically checked."""

from __future__ import annotations

import math

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
    ping_pong,
)

EPS, LEAP, RNG_SEED = 0.20, 10, 0xCAFEBEEF
MEAN_TOL, COV_TOL, ACC_LO, ACC_HI = 0.15, 0.30, 0.45, 0.999


def target(d: int) -> tuple[np.ndarray, np.ndarray]:
    """(Sigma, A = Sigma^-1): random rotation of geomspace(0.5, 2, d) eigenvalues (seed 0xC0FFEE)."""
    rng = np.random.default_rng(0xC0FFEE)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    sigma = q @ np.diag(np.geomspace(0.5, 2.0, d)) @ q.T
    sigma = 0.5 * (sigma + sigma.T)
    a = np.linalg.inv(sigma)
    return sigma, 0.5 * (a + a.T)


class Hmc(KernelTask):
    name = "hmc"
    regime = "R2 compute"
    unit = "GFLOP/s"
    unit_note = "mat-vec FMAs only: K*T*(L+1)*(2d^2-d)"
    input_seed = 0xBADC0DE
    tolerance_note = ("statistical: finite; max_i |mean_i|/sqrt(Sigma_ii) <= 0.15; "
                      "||Cov-Sigma||_F/||Sigma||_F <= 0.30; acceptance in [0.45, 0.999]")

    def entries(self) -> tuple[Entry, ...]:
        return (Entry("hmc_step", (Arg("q_in", "buffer", const=True), Arg("q_out", "buffer"),
                                   Arg("accept_cnt", "buffer"), Arg("A", "buffer", const=True),
                                   Arg("K", "uint"), Arg("d", "uint"), Arg("L", "uint"), Arg("eps", "float"),
                                   Arg("step_idx", "uint"), Arg("seed", "uint"))),)

    def ladder(self, backend: str, split: str) -> list[Size]:
        if backend == "cuda":
            table = {"in": [(8, 262144, 200), (16, 65536, 200), (32, 16384, 200)],
                     "held": [(24, 32768, 200), (20, 32768, 200)]}
        else:
            table = {"in": [(8, 2048, 40), (16, 1024, 40), (32, 1024, 30)], "held": [(24, 1024, 30), (20, 1024, 30)]}
        return [Size(f"d{d},K{k},T{t}", {"d": d, "K": k, "T": t}) for d, k, t in table[split]]

    def buffers(self, p: Size) -> list[BufferSpec]:
        n = p["K"] * p["d"]
        return [BufferSpec("q_a", "float32", n, "inout"), BufferSpec("q_b", "float32", n, "scratch"),
                BufferSpec("accept", "uint32", p["K"], "counter"), BufferSpec("A", "float32", p["d"] ** 2, "in")]

    def init(self, p: Size, seed: int) -> dict[str, np.ndarray]:
        d, k = p["d"], p["K"]
        sigma, a = target(d)
        chol = np.linalg.cholesky(4.0 * sigma)
        rng = np.random.default_rng(seed)
        q0 = rng.standard_normal((k, d)) @ chol.T
        return {"q_a": q0.astype(np.float32).ravel(), "A": a.astype(np.float32).ravel()}

    def schedule(self, p: Size, backend: str) -> list[Launch]:
        out = []
        for t in range(p["T"]):
            src, dst = ping_pong(t, "q_a", "q_b")
            out.append(Launch("hmc_step", (src, dst, "accept", "A", p["K"], p["d"], LEAP, EPS, t, RNG_SEED),
                              (p["K"], 1, 1), (64, 1, 1)))
        return out

    def outputs(self, p: Size) -> dict[str, str]:
        return {"q": after_steps(p["T"], "q_a", "q_b"), "accept": "accept"}

    def needs_reference(self) -> bool:
        return False

    def reference(self, p: Size, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {}

    def check(self, p: Size, got: dict[str, np.ndarray], ref: dict[str, np.ndarray],
              inputs: dict[str, np.ndarray]) -> CheckResult:
        d, k, t = p["d"], p["K"], p["T"]
        q = np.asarray(got["q"], dtype=np.float64).reshape(k, d)
        if not np.isfinite(q).all():
            return CheckResult(False, "nonfinite_q", float(np.count_nonzero(~np.isfinite(q))), 0.0)
        sigma, _ = target(d)
        mean_err = float(np.max(np.abs(q.mean(axis=0)) / np.sqrt(np.diag(sigma))))
        cov_err = float(np.linalg.norm(np.cov(q, rowvar=False) - sigma) / np.linalg.norm(sigma))
        rate = float(np.asarray(got["accept"], dtype=np.float64).sum()) / (k * t)
        acc_excess = 0.0
        if rate < ACC_LO:
            acc_excess = (ACC_LO - rate) / ACC_LO
        elif rate > ACC_HI:
            acc_excess = (rate - ACC_HI) / (1.0 - ACC_HI)
        err = max(mean_err / MEAN_TOL, cov_err / COV_TOL, acc_excess)
        detail = {"mean_err": mean_err, "cov_err": cov_err, "accept_rate": rate}
        ok = math.isfinite(err) and err <= 1.0 and ACC_LO <= rate <= ACC_HI
        return CheckResult(ok, "stat", err, 1.0, detail)

    def bytes_moved(self, p: Size) -> float:
        return float(p["T"] * (8 * p["K"] * p["d"] + 8 * p["K"]))

    def flops(self, p: Size) -> float:
        d = p["d"]
        return float(p["K"] * p["T"] * (LEAP + 1) * (2 * d * d - d))

    def description(self, backend: str) -> str:
        common = (
            "K independent Hamiltonian Monte Carlo chains sample N(0, Sigma) in d dimensions (d even, <= 32 in the "
            "seed; the held-out sizes include other d). A = Sigma^-1 is a d x d row-major fp32 matrix; q is K x d.\n"
            "One call per HMC step (T calls, ping-pong q_a -> q_b). Per chain c with base = step_idx*(d+1):\n"
            "  1. momentum p by Box-Muller: for i = 0,2,4..: u1 = max(rand(base+i), 1e-7), u2 = rand(base+i+1),\n"
            "     r = sqrt(-2 ln u1), th = 2 pi u2, p_i = r cos th, p_{i+1} = r sin th;\n"
            "  2. f = A q, U0 = q.f/2, K0 = p.p/2; p -= eps/2 f;\n"
            f"  3. L = {LEAP} times: q += eps p; f = A q; p -= (eps, or eps/2 on the last) f;  eps = {EPS};\n"
            "  4. dH = (q.f/2 + p.p/2) - (U0 + K0); accept iff dH finite and ln(max(rand(base+d), 1e-30)) < -dH;\n"
            "  5. q_out = accepted ? q : q_old; accept_cnt[c] += accepted.\n"
            "rand(counter): x = seed + c*0x9E3779B9; x = mix32(x ^ counter); x = mix32(x); u = (x >> 8) * 2^-24,\n"
            "mix32 = Murmur3 fmix32 (x ^= x>>16; x *= 0x85EBCA6B; x ^= x>>13; x *= 0xC2B2AE35; x ^= x>>16), uint32.\n"
            "The check is statistical on the final q (mean, covariance, acceptance rate); it must hold for every d.\n"
        )
        if backend == "cuda":
            return common + "Launch: 1-D grid of K logical threads in blocks of 64 (padded; guard c < K)."
        return common + "Each call advances all K chains one HMC step."
