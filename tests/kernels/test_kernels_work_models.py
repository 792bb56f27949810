"""Work models, ladders and schedules of the twelve tasks (no kernels run)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthloop.tasks.kernels import TASK_NAMES, get_task
from synthloop.tasks.kernels.spec import BACKENDS, Size

EXPECTED = {  # task -> (params, bytes per repetition, flops per repetition)
    "saxpy": ({"N": 1000}, 12_000, 2_000),
    "heat2d": ({"NX": 10, "NY": 20, "steps": 3}, 8 * 200 * 3, 7 * 200 * 3),
    "wave3d": ({"NX": 4, "NY": 5, "NZ": 6, "steps": 2}, 12 * 120 * 2, 10 * 120 * 2),
    "nbody": ({"N": 100, "steps": 3}, 68 * 100 * 3, 20 * 100 ** 2 * 3),
    "hmc": ({"d": 8, "K": 10, "T": 4}, 4 * (8 * 10 * 8 + 8 * 10), 10 * 4 * 11 * (2 * 64 - 8)),
    "lbm": ({"NX": 8, "NY": 4, "steps": 5}, 72 * 32 * 5, 150 * 32 * 5),
    "ising": ({"NX": 8, "NY": 6, "sweeps": 3}, 2 * 48 * 3, 0),
    "gradshaf": ({"NR": 9, "NZ": 5, "steps": 2}, 12 * 45 * 2, 25 * 45 * 2),
    "fft3d": ({"N": 16}, 48 * 16 ** 3, 15 * 16 ** 3 * 4),
    "adi3d": ({"NX": 4, "NY": 5, "NZ": 6, "steps": 2}, 24 * 120 * 2, 24 * 120 * 2),
    "morton": ({"N": 8, "steps": 3}, 8 * 512 * 3, 9 * 512 * 3),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_work_model_numbers(name: str) -> None:
    params, nbytes, flops = EXPECTED[name]
    t = get_task(name)
    p = Size("t", params)
    assert t.bytes_moved(p) == pytest.approx(nbytes)
    assert t.flops(p) == pytest.approx(flops)


def test_fft3d_byte_model_is_48_not_96() -> None:
    """The original counted 16 B read + 16 B write per pass for an 8 B complex64: exactly 2x too high."""
    t = get_task("fft3d")
    p = Size("t", {"N": 32})
    assert t.bytes_moved(p) / 32 ** 3 == 48.0
    assert t.bytes_moved(p) == 3 * 2 * 8 * 32 ** 3


def test_lj_work_model_counts_pairs_within_cutoff() -> None:
    t = get_task("lj")
    p = t.sizes("cpu", "in")[0]
    pos = t.init(p, t.input_seed)["pos_a"].reshape(p["N"], 4)[:, :3].astype(np.float64)
    d = pos[:, None, :] - pos[None, :, :]
    d -= p["L"] * np.round(d / p["L"])
    r2 = (d ** 2).sum(-1)
    brute = int(np.count_nonzero(np.triu(r2 < 2.5 ** 2, k=1)))
    assert t.pairs_at_t0(p) == brute
    assert t.flops(p) == 2 * brute * 20 * p["steps"]


@pytest.mark.parametrize("name", TASK_NAMES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_ladders_and_schedules_are_consistent(name: str, backend: str) -> None:
    t = get_task(name)
    inn, held = t.sizes(backend, "in"), t.sizes(backend, "held")
    assert len(inn) == 3 and held, "three in-distribution sizes and at least one held-out"
    assert not {s.key() for s in inn} & {s.key() for s in held}, "held-out must differ from in-distribution"
    for p in inn + held:
        t.validate_schedule(p, backend)
        bufs = {b.name for b in t.buffers(p)}
        assert set(t.outputs(p).values()) <= bufs
        assert t.bytes_moved(p) > 0 and t.flops(p) >= 0 and t.working_set(p) > 0


def test_pingpong_output_parity() -> None:
    assert get_task("heat2d").outputs(Size("e", {"NX": 4, "NY": 4, "steps": 2}))["u"] == "u_a"
    assert get_task("heat2d").outputs(Size("o", {"NX": 4, "NY": 4, "steps": 3}))["u"] == "u_b"
    assert get_task("wave3d").outputs(Size("w", {"NX": 4, "NY": 4, "NZ": 4, "steps": 5}))["u"] == "b0"
    assert get_task("adi3d").outputs(Size("a", {"NX": 4, "NY": 4, "NZ": 4, "steps": 1}))["u"] == "u_b"
    assert get_task("fft3d").outputs(Size("f", {"N": 4}))["X"] == "b"


def test_hmc_held_out_covers_other_dimensions() -> None:
    t = get_task("hmc")
    for backend in BACKENDS:
        ds_in = {p["d"] for p in t.sizes(backend, "in")}
        ds_held = {p["d"] for p in t.sizes(backend, "held")}
        assert ds_held - ds_in, "a parameter-axis held-out (d not seen in-distribution)"
        assert 20 in ds_held and 20 % 8 != 0


@pytest.mark.parametrize("name", TASK_NAMES)
def test_prompt_material_per_backend(name: str) -> None:
    t = get_task(name)
    for backend in BACKENDS:
        text = t.description(backend)
        sig = t.signatures(backend)
        assert len(text) > 100
        for e in t.entries():
            assert e.name in sig
        assert ('extern "C" __global__' in sig) == (backend == "cuda")
        assert t.seed_source(backend).strip()
    assert "block" in t.description("cuda").lower()


@pytest.mark.parametrize("name", [n for n in TASK_NAMES if n != "hmc"])
def test_tolerance_rejects_zeros_and_the_input(name: str) -> None:
    """The checker must separate the reference from all-zeros and from the initial state (KernelBench #165)."""
    t = get_task(name)
    p = t.sizes("cpu", "in")[0]
    inputs = t.init(p, t.input_seed)
    ref = t.reference(p, inputs)
    assert t.check(p, ref, ref, inputs).ok
    zeros = {k: np.zeros_like(v) for k, v in ref.items()}
    assert not t.check(p, zeros, ref, inputs).ok
    outs = t.outputs(p)
    first_in = [b.name for b in t.buffers(p) if b.role == "inout"][0]
    echoed = {}
    for logical, v in ref.items():
        src = inputs.get(outs[logical], inputs[first_in])
        echoed[logical] = src if src.shape == v.shape else np.resize(src, v.shape)
    assert not t.check(p, echoed, ref, inputs).ok


def test_nan_fails_explicitly() -> None:
    t = get_task("heat2d")
    p = t.sizes("cpu", "in")[0]
    inputs = t.init(p, 1)
    ref = t.reference(p, inputs)
    bad = ref["u"].copy()
    bad[7] = np.nan
    res = t.check(p, {"u": bad}, ref, inputs)
    assert not res.ok and res.kind == "nonfinite" and res.detail["first_index"] == 7
    assert math.isfinite(res.tol)
