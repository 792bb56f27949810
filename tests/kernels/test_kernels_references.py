"""Reference self-consistency: jitted references against independent slow implementations."""

from __future__ import annotations

import numpy as np

from synthloop.tasks.kernels import get_task
from synthloop.tasks.kernels.defs.hmc import target
from synthloop.tasks.kernels.defs.ising import RNG_SEED, p_accept, sweeps_numpy
from synthloop.tasks.kernels.defs.morton import morton_index
from synthloop.tasks.kernels.spec import Size


def test_ising_jitted_reference_matches_vectorised_numpy() -> None:
    t = get_task("ising")
    p = Size("t", {"NX": 24, "NY": 16, "sweeps": 3})
    inputs = t.init(p, 5)
    jit = t.reference(p, inputs)["spins"].reshape(16, 24)
    slow = sweeps_numpy(inputs["spins"].reshape(16, 24), 6, p_accept(), RNG_SEED)
    assert np.array_equal(jit, slow)
    assert not np.array_equal(jit, inputs["spins"].reshape(16, 24)), "some spins must flip"


def test_nbody_reference_matches_brute_force_numpy() -> None:
    t = get_task("nbody")
    p = Size("t", {"N": 50, "steps": 2})
    inp = t.init(p, 3)
    pos = inp["pos_a"].reshape(50, 4).copy()
    vel = inp["vel_a"].reshape(50, 4).copy()
    m = inp["mass"].astype(np.float64)
    for _ in range(2):
        d = pos[None, :, :3].astype(np.float64) - pos[:, None, :3].astype(np.float64)
        r2 = (d ** 2).sum(-1) + 0.05 ** 2
        acc = (d * (m[None, :] / r2 ** 1.5)[..., None]).sum(1)
        vel[:, :3] = vel[:, :3] + (acc * 1e-3).astype(np.float32)
        pos[:, :3] = pos[:, :3] + vel[:, :3] * np.float32(1e-3)
    ref = t.reference(p, inp)
    assert np.allclose(ref["pos"].reshape(50, 4), pos, atol=1e-6)
    assert np.allclose(ref["vel"].reshape(50, 4), vel, atol=1e-6)


def test_lj_cell_list_forces_match_brute_force() -> None:
    from synthloop.tasks.kernels.defs.lj import _forces, lj_size

    p = lj_size(8, 1)
    assert p["M"] >= 3
    t = get_task("lj")
    pos = t.init(p, 9)["pos_a"].reshape(p["N"], 4)[:, :3].astype(np.float64)
    f = _forces(pos, p["M"], p["L"], False)
    d = pos[None, :, :] - pos[:, None, :]
    d -= p["L"] * np.round(d / p["L"])
    r2 = (d ** 2).sum(-1)
    mask = (r2 < 2.5 ** 2) & (r2 > 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv2 = np.where(mask, 1.0 / r2, 0.0)
    inv6 = inv2 ** 3
    s = -24.0 * (2 * inv6 ** 2 - inv6) * inv2
    brute = (s[..., None] * d).sum(1)
    assert np.allclose(f, brute, rtol=1e-9, atol=1e-9)


def test_morton_index_is_a_permutation_with_the_spec_bit_layout() -> None:
    idx = morton_index(8)
    assert sorted(idx.ravel().tolist()) == list(range(512))
    assert idx[0, 0, 1] == 1 and idx[0, 1, 0] == 2 and idx[1, 0, 0] == 4 and idx[0, 0, 2] == 8


def test_fft3d_reference_is_numpy_fftn() -> None:
    t = get_task("fft3d")
    p = Size("t", {"N": 8})
    inp = t.init(p, 1)
    z = inp["a"].view(np.complex64).reshape(8, 8, 8)
    got = t.reference(p, inp)["X"].view(np.complex64).reshape(8, 8, 8)
    assert np.allclose(got, np.fft.fftn(z), atol=1e-4)


def test_hmc_checker_accepts_exact_samples_and_rejects_a_wrong_covariance() -> None:
    t = get_task("hmc")
    p = Size("t", {"d": 16, "K": 2048, "T": 10})
    sigma, _ = target(16)
    rng = np.random.default_rng(0)
    good = rng.multivariate_normal(np.zeros(16), sigma, size=2048).astype(np.float32)
    accept = np.full(2048, 8, np.uint32)  # 80% acceptance
    assert t.check(p, {"q": good.ravel(), "accept": accept}, {}, {}).ok
    wide = (good * 1.5).ravel()
    res = t.check(p, {"q": wide, "accept": accept}, {}, {})
    assert not res.ok and res.detail["cov_err"] > 0.3
    lazy = t.check(p, {"q": good.ravel(), "accept": np.full(2048, 10, np.uint32)}, {}, {})
    assert not lazy.ok, "acceptance 1.0 (never rejecting) is outside [0.45, 0.999]"
    nan = good.ravel().copy()
    nan[3] = np.nan
    assert t.check(p, {"q": nan, "accept": accept}, {}, {}).kind == "nonfinite_q"
