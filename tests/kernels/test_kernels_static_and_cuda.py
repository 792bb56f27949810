"""Static checker rules and the CUDA code paths that can be tested without a GPU (GPU tests skip)."""

from __future__ import annotations

import pytest

from synthloop.tasks.kernels import TASK_NAMES, get_task
from synthloop.tasks.kernels.antihack import static_check, strip_comments
from synthloop.tasks.kernels.cuda_backend import gpu_available, launch_dims, nvrtc_options, trim_nvrtc_log
from synthloop.tasks.kernels.spec import Launch


@pytest.mark.parametrize("name", TASK_NAMES)
@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_seeds_pass_the_static_checker(name: str, backend: str) -> None:
    t = get_task(name)
    rep = static_check(t.seed_source(backend), backend, [e.name for e in t.entries()])
    assert rep.ok and not rep.warnings, rep


@pytest.mark.parametrize("snippet,what", [
    ("#include <pthread.h>\n", "raw threads"),
    ("void f(){ fork(); }", "spawning processes"),
    ("void f(){ void* h = dlopen(0, 0); }", "dynamic symbol lookup"),
    ("void f(){ FILE* f = fopen(\"x\", \"r\"); }", "file access"),
    ("#include <fftw3.h>\n", "external numerical libraries"),
    ("__attribute__((constructor)) void g(void) {}", "load-time constructors"),
    ("void f(){ __asm__(\"nop\"); }", "inline assembly"),
])
def test_forbidden_constructs_rejected(snippet: str, what: str) -> None:
    rep = static_check(snippet, "cpu")
    assert not rep.ok and any(what in e for e in rep.errors), rep


def test_comments_do_not_trigger_rules() -> None:
    assert static_check("/* fork() system() */\n// dlopen(\nint x;", "cpu").ok
    assert strip_comments("a /* b\nc */ d").count("\n") == 1


def test_cuda_rules() -> None:
    assert not static_check("__global__ void k(){ long long t = clock64(); }", "cuda").ok
    assert not static_check("void h(){ cudaMalloc(0, 4); }", "cuda").ok
    warn = static_check("__device__ float cache[16];\n__global__ void k(){}", "cuda")
    assert warn.ok and warn.warnings


def test_nvrtc_options_never_contain_O3() -> None:
    opts = nvrtc_options()
    assert "-O3" not in opts and "--use_fast_math" in opts and "-std=c++17" in opts
    assert "-lineinfo" in nvrtc_options(lineinfo=True)
    assert "--use_fast_math" not in nvrtc_options(fast_math=False)
    with pytest.raises(ValueError, match="NVRTC rejects"):
        nvrtc_options(extra=("-O3",))


def test_launch_padding_math() -> None:
    blocks, block = launch_dims(Launch("k", (), (1000, 17, 1), (16, 16, 1)))
    assert blocks == (63, 2, 1) and block == (16, 16, 1)
    with pytest.raises(ValueError, match="65535"):
        launch_dims(Launch("k", (), (1, 70000 * 16, 1), (1, 16, 1)))
    with pytest.raises(ValueError, match="1024"):
        launch_dims(Launch("k", (), (2048, 1, 1), (2048, 1, 1)))


@pytest.mark.parametrize("name", TASK_NAMES)
def test_every_cuda_ladder_launch_fits_cuda_limits(name: str) -> None:
    t = get_task(name)
    for split in ("in", "held"):
        for p in t.sizes("cuda", split):
            for launch in t.schedule(p, "cuda"):
                blocks, block = launch_dims(launch)
                covered = tuple(b * k for b, k in zip(blocks, block))
                assert all(c >= g for c, g in zip(covered, launch.grid)), "padding covers the logical grid"
                assert all(c - g < k for c, g, k in zip(covered, launch.grid, block)), "pads by less than a block"


def test_trim_nvrtc_log_keeps_errors() -> None:
    log = "line a\nkernel.cu(4): error: identifier \"INFINITY\" is undefined\n   float m = -INFINITY;\nnoise\n"
    out = trim_nvrtc_log(log)
    assert "INFINITY" in out and "noise" not in out


@pytest.mark.skipif(not gpu_available(), reason="needs a CUDA GPU and cupy")
def test_saxpy_seed_on_cuda() -> None:  # pragma: no cover - GPU only
    from synthloop.tasks.kernels.evaluate import EvalConfig, evaluate_kernel

    t = get_task("saxpy")
    res = evaluate_kernel("saxpy", t.seed_source("cuda"), EvalConfig(backend="cuda", warmup=1, measure=3),
                          sizes=t.sizes("cuda", "held"))
    assert res["correct"], res.get("fail_reason")
