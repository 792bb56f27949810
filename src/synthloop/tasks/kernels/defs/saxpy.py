"""saxpy: y <- a*x + y, the smoke test (one launch, 12 B per element)."""

from __future__ import annotations

import numpy as np

from synthloop.tasks.kernels.spec import (
    Arg,
    BufferSpec,
    CheckResult,
    Entry,
    KernelTask,
    Launch,
    Size,
    max_abs_check,
)

A = 2.5


def _n(n: int, label: str | None = None) -> Size:
    return Size(label or f"N={n}", {"N": n})


class Saxpy(KernelTask):
    name = "saxpy"
    regime = "smoke test"
    unit = "GB/s"
    unit_note = "effective, 12 B/element"
    input_seed = 0xBEEF
    tolerance_note = "max|got-ref| <= 1e-5 * max(1, max|ref|)"

    def entries(self) -> tuple[Entry, ...]:
        return (Entry("saxpy", (Arg("x", "buffer", const=True), Arg("y", "buffer"),
                                Arg("a", "float"), Arg("N", "uint"))),)

    def ladder(self, backend: str, split: str) -> list[Size]:
        if backend == "cuda":
            sizes = {"in": [1 << 24, 1 << 26, 1 << 28], "held": [100_000_007]}
        else:
            sizes = {"in": [1 << 18, 1 << 20, 1 << 22], "held": [1_000_003]}
        return [_n(n) for n in sizes[split]]

    def buffers(self, p: Size) -> list[BufferSpec]:
        return [BufferSpec("x", "float32", p["N"], "in"), BufferSpec("y", "float32", p["N"], "inout")]

    def init(self, p: Size, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        return {"x": rng.standard_normal(p["N"], dtype=np.float32),
                "y": rng.standard_normal(p["N"], dtype=np.float32)}

    def schedule(self, p: Size, backend: str) -> list[Launch]:
        return [Launch("saxpy", ("x", "y", A, p["N"]), (p["N"], 1, 1), (256, 1, 1))]

    def outputs(self, p: Size) -> dict[str, str]:
        return {"y": "y"}

    def reference(self, p: Size, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": (np.float32(A) * inputs["x"] + inputs["y"]).astype(np.float32)}

    def check(self, p: Size, got: dict[str, np.ndarray], ref: dict[str, np.ndarray],
              inputs: dict[str, np.ndarray]) -> CheckResult:
        scale = max(1.0, float(np.max(np.abs(ref["y"]))))
        return max_abs_check(got["y"], ref["y"], atol=1e-5 * scale, rtol=0.0, name="y")

    def bytes_moved(self, p: Size) -> float:
        return 12.0 * p["N"]

    def flops(self, p: Size) -> float:
        return 2.0 * p["N"]

    def description(self, backend: str) -> str:
        unit = "C function called once" if backend == "cpu" else \
            "CUDA kernel launched once: 1-D grid of N logical threads in blocks of 256, padded, so guard i < N"
        return (
            f"Compute y[i] = a*x[i] + y[i] for i in [0, N) with a = {A}. x and y are fp32, N(0,1).\n"
            f"The host makes one call per repetition ({unit}); y is restored before every repetition.\n"
            "N is not a multiple of any vector width on the held-out sizes: handle the tail."
        )
