"""synthloop Task glue for the kernel tasks: ``kernels/<name>`` (the only module importing synthloop.core).

Cases. One case is a whole *ladder* of sizes, not one size: the sizes of a case are timed one after the
other in one worker, so they never compete for the cores (the engine may run cases in parallel), and a
case's score is already the geometric mean over its sizes with the all-sizes-correct rule.

* ``feedback``: the in-distribution ladder (shown to the model);
* ``selection``: the same ladder on fresh input seeds (never shown; for choosing the best);
* ``heldout``: one case per held-out configuration (odd/non-square sizes, other hmc d), frozen by
  :meth:`KernelSearchTask.heldout_fingerprint` before a search starts and scored once at the end.

Trust boundary. ``run`` executes in the engine's sandbox and itself runs the candidate in a grandchild
(the worker), comparing the dumped outputs against references in the sandbox process, where the
candidate's native code never ran. ``judge`` (trusted process) re-validates the returned structure and
recomputes the fitness from the raw timing samples with this machine's cached ceilings, so a tampered
fraction or score in the output is ignored; the correctness verdict is taken from the sandbox-side
comparison (see evaluate.py for why that process is clean).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, ClassVar, Literal

from pydantic import Field

from synthloop.core.task import Task, TaskOptions
from synthloop.core.types import Artifact, Case, CasePools, CaseResult, Evaluation, MetricSpec
from synthloop.execution.base import Limits
from synthloop.tasks.kernels.antihack import static_check
from synthloop.tasks.kernels.catalog import TASK_NAMES, get_task
from synthloop.tasks.kernels.spec import KernelTask, Size


class KernelOptions(TaskOptions):
    """Options of every ``kernels/<task>``."""

    backend: Literal["cpu", "cuda"] = "cpu"
    sizes: list[str] | None = Field(default=None, description="subset of in-distribution size labels")
    warmup: int = Field(default=3, ge=0)
    measure: int = Field(default=10, ge=1)
    variants: int = Field(default=2, ge=1, description="input variants alternated across repetitions")
    threads: int | None = Field(default=None, ge=1, description="OpenMP threads (cpu); default: all allowed")
    timeout_s: float = Field(default=60.0, gt=0, description="per-size worker timeout")
    implausible_blocks: bool = Field(default=True, description="an implausible speed makes the case invalid")


class KernelSearchTask(Task):
    """A Metal-Sci kernel task on a portable backend (subclassed once per task below)."""

    kernel: ClassVar[str] = "saxpy"
    Options: ClassVar[type[TaskOptions]] = KernelOptions
    objective: ClassVar[str] = "fraction_of_attainable"
    language: ClassVar[str] = "c"  # per instance: "c" (cpu) or "cuda", set in __init__

    options: KernelOptions

    def __init__(self, options: TaskOptions | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        # the artifact language follows the backend option; shadow the class default on the instance
        self.__dict__["language"] = "c" if self.options.backend == "cpu" else "cuda"

    @property
    def spec(self) -> KernelTask:
        return get_task(self.kernel)

    @property
    def metrics(self) -> list[MetricSpec]:
        return [MetricSpec("fraction_of_attainable", "max", "geometric mean over sizes of t_min/t_median"),
                MetricSpec("worst_fraction", "max", "smallest per-size fraction")]

    @property
    def limits(self) -> Limits:
        n = max(len(self._sizes("in")), len(self._sizes("held")))
        # compile + references + all sizes; the worker writes its dumps as files (hence fsize)
        return Limits(wall_s=120.0 + self.options.timeout_s * n, memory_mb=16384, fsize_mb=8192,
                      result_mb=16, nproc=256)

    # ---- description -------------------------------------------------
    def _sizes(self, split: str) -> list[Size]:
        sizes = self.spec.sizes(self.options.backend, split)
        if split == "in" and self.options.sizes:
            wanted = set(self.options.sizes)
            sizes = [s for s in sizes if s.label in wanted]
            if not sizes:
                raise ValueError(f"no size of {self.kernel} matches {sorted(wanted)}")
        return sizes

    def brief(self) -> str:
        t, b = self.spec, self.options.backend
        lang = "C (C11, gcc -O3 -march=native -fopenmp -shared -fPIC)" if b == "cpu" else \
            "CUDA C compiled at runtime by NVRTC (-std=c++17 --use_fast_math)"
        sizes = ", ".join(s.label for s in self._sizes("in"))
        return "\n".join([
            f"## Task: {t.name} ({t.regime}) on the {b} backend",
            t.description(b),
            "## Required entry points (exact names, argument order and types)",
            t.signatures(b),
            "## Rules",
            f"- Write {lang}. One source file defines every entry point above"
            + (' with extern "C" linkage.' if b == "cuda" else "."),
            "- Results must be deterministic and match the reference within: " + t.tolerance_note + ".",
            "- Never write outside the given buffers or modify read-only (const) inputs; inputs change between "
            "repetitions, so caching results across calls is wrong.",
            "- Forbidden: threads other than OpenMP, processes, files, environment, clocks/timers, dlopen/dlsym, "
            "inline assembly (cpu), external numerical libraries (FFTW, MKL, BLAS, cuFFT, cuBLAS).",
            f"- Fitness: per size, the fraction of the attainable ceiling min(peak FLOP/s, AI x bandwidth of the "
            f"memory level the working set lives in), measured on this machine; the score is the geometric mean "
            f"over sizes ({sizes}) and is zero if any size is wrong. Achieved rate unit: {t.unit} ({t.unit_note}).",
        ])

    def seed(self) -> Artifact | None:
        return Artifact(content=self.spec.seed_source(self.options.backend), language=self.language,
                        meta={"origin": "seed", "task": self.kernel})

    def pools(self) -> CasePools:
        inn = [s.to_dict() for s in self._sizes("in")]
        return CasePools(
            feedback=[Case("ladder", "feedback", {"sizes": inn, "variant_offset": 0})],
            selection=[Case("ladder-fresh", "selection", {"sizes": inn, "variant_offset": 1000})],
            heldout=[Case(f"held:{s.label}", "heldout", {"sizes": [s.to_dict()], "variant_offset": 0})
                     for s in self._sizes("held")],
        )

    def heldout_fingerprint(self) -> str:
        """Hash of the held-out configurations and the task version, to freeze them before a search."""
        data = {"task": self.kernel, "version": self.spec.version, "backend": self.options.backend,
                "held": [s.to_dict() for s in self._sizes("held")]}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    # ---- checks and execution -----------------------------------------
    def validate(self, artifact: Artifact) -> list[str]:
        rep = static_check(artifact.content, self.options.backend, [e.name for e in self.spec.entries()])
        return rep.errors

    def run(self, artifact: Artifact, case: Case) -> Any:
        from synthloop.tasks.kernels.evaluate import EvalConfig, evaluate_kernel

        sizes = [Size(s["label"], s["params"]) for s in case.params["sizes"]]
        cfg = EvalConfig(backend=self.options.backend, warmup=self.options.warmup, measure=self.options.measure,
                         variants=self.options.variants, timeout_s=self.options.timeout_s,
                         threads=self.options.threads)
        cfg.seed_offset = int(case.params.get("variant_offset", 0))
        return evaluate_kernel(self.kernel, artifact.content, cfg, sizes=sizes, use_ceilings=False)

    def judge(self, artifact: Artifact, case: Case, output: Any) -> CaseResult:
        from synthloop.tasks.kernels.ceilings import get_ceilings
        from synthloop.tasks.kernels.evaluate import format_result
        from synthloop.tasks.kernels.fitness import gmean_score, size_fitness

        if not isinstance(output, dict) or not isinstance(output.get("sizes"), list):
            return CaseResult(case.id, ok=False, diagnostics=["malformed output from the sandbox"],
                              error_kind="output")
        if output.get("error_kind") in ("compile", "static_check"):
            return CaseResult(case.id, ok=False, diagnostics=[str(output.get("fail_reason", ""))[:4000]],
                              error_kind=str(output["error_kind"]))
        wanted = {s["label"]: Size(s["label"], s["params"]) for s in case.params["sizes"]}
        ceilings = get_ceilings(self.options.backend, threads=self.options.threads)
        rows: list[dict[str, Any]] = []
        fracs: list[float | None] = []
        flags: list[str] = []
        for row in output["sizes"]:
            label = row.get("label") if isinstance(row, dict) else None
            if label not in wanted:
                return CaseResult(case.id, ok=False, diagnostics=[f"unexpected size {label!r}"], error_kind="output")
            times = row.get("times_s") if row.get("correct") is True else None
            if times is not None and not (isinstance(times, list) and times and
                                          all(isinstance(x, (int, float)) and math.isfinite(x) and x > 0 for x in times)):
                return CaseResult(case.id, ok=False, diagnostics=[f"{label}: malformed timings"], error_kind="output")
            clean = {k: row.get(k) for k in ("label", "correct", "error_kind", "error", "check", "times_s")}
            if times is not None:
                fit = size_fitness(self.spec, wanted[label], [float(x) for x in times], ceilings)
                clean["fitness"] = fit.to_dict()
                fracs.append(fit.fraction)
                if fit.implausible:
                    flags.append(f"{label}: {fit.raw_fraction:.2f}x the attainable ceiling (flagged for review)")
            else:
                fracs.append(None)
            rows.append(clean)
        if set(wanted) - {r["label"] for r in rows}:
            return CaseResult(case.id, ok=False, diagnostics=["sizes missing from the output"], error_kind="output")
        score = gmean_score(fracs)
        packet = format_result({"sizes": rows, "score": score})
        metrics = {"fraction_of_attainable": score}
        if all(f is not None for f in fracs):
            metrics["worst_fraction"] = float(min(f for f in fracs if f is not None))
        private = {"sizes": rows, "flags": flags, "warnings": output.get("warnings", [])}
        bad = [r for r in rows if not r["correct"]]
        if bad:
            return CaseResult(case.id, ok=False, score=None, metrics=metrics, diagnostics=packet.splitlines(),
                              private=private, error_kind=str(bad[0].get("error_kind") or "wrong"))
        if flags and self.options.implausible_blocks:
            return CaseResult(case.id, ok=False, score=None, metrics=metrics,
                              diagnostics=packet.splitlines() + ["timing flagged for review: " + "; ".join(flags)],
                              private=private, error_kind="implausible")
        return CaseResult(case.id, ok=True, score=score, metrics=metrics, diagnostics=packet.splitlines(),
                          private=private)

    def aggregate(self, artifact: Artifact, pool: str, results: list[CaseResult]) -> Evaluation:
        """Geometric mean over cases (each already a gmean over its sizes); invalid if any case failed."""
        from synthloop.tasks.kernels.fitness import gmean_score

        ev = super().aggregate(artifact, pool, results)
        if ev.valid and results:
            scores = [float(r.score) for r in results if r.score is not None]
            ev.score = gmean_score(scores)
            ev.metrics["fraction_of_attainable"] = ev.score
        return ev


def _make(name: str) -> type[KernelSearchTask]:
    spec = get_task(name)
    return type(f"Kernel{name.capitalize()}", (KernelSearchTask,), {
        "kernel": name, "name": f"kernels/{name}", "__module__": __name__,
        "description": f"Metal-Sci {name} ({spec.regime}): roofline-scored kernel search on cpu/cuda",
    })


KernelSaxpy = _make("saxpy")
KernelHeat2d = _make("heat2d")
KernelWave3d = _make("wave3d")
KernelNbody = _make("nbody")
KernelHmc = _make("hmc")
KernelLbm = _make("lbm")
KernelIsing = _make("ising")
KernelLj = _make("lj")
KernelGradshaf = _make("gradshaf")
KernelFft3d = _make("fft3d")
KernelAdi3d = _make("adi3d")
KernelMorton = _make("morton")

#: the lines for synthloop.tasks.registry._BUILTIN
REGISTRY: dict[str, str] = {f"kernels/{n}": f"synthloop.tasks.kernels.task:Kernel{n.capitalize()}" for n in TASK_NAMES}
