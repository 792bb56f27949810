"""synthloop Task glue for the kernel tasks: ``kernels/<name>`` (with search.py, run_gate.py and prompts.py, the
only modules importing synthloop.core; the rest stays importable on a bare GPU host).

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

Duels. Promotion needs incumbent and candidate timed interleaved in one process, and that process runs
candidate code, so it is a case like any other: :meth:`KernelSearchTask.duel_case` carries the incumbent's
source in its params, ``run`` times both in the sandbox, and ``judge`` recomputes the bootstrap decision
from the raw samples. The search loop (search.py) and the held-out gate (run_gate.py) use it through the
engine's executor; ``search``/``gate`` are the hooks the runner calls instead of the generic strategies.
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

#: the id and mode of an interleaved incumbent-vs-candidate timing case (not in any pool)
DUEL = "duel"


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
    duel_pairs: int = Field(default=10, ge=2, description="interleaved incumbent/candidate pairs per size")
    promote_delta: float = Field(default=0.02, ge=0, description="promotion needs the speedup CI above 1+delta")
    gate_pairs: int = Field(default=10, ge=2, description="interleaved seed/finalist pairs per size in the gate")


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

    def require_installed(self) -> None:
        """The cuda backend needs cupy (the ``cuda`` extra): the CLI asks before creating a run directory,
        so a missing cupy is one line naming the install, not a run whose every candidate fails."""
        if self.options.backend == "cuda":
            from synthloop.execution import require_extra

            require_extra("cupy", "cuda", "--backend cuda")

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
        from synthloop.tasks.kernels.evaluate import EvalConfig, evaluate_kernel, time_interleaved

        sizes = [Size(s["label"], s["params"]) for s in case.params["sizes"]]
        cfg = EvalConfig(backend=self.options.backend, warmup=self.options.warmup, measure=self.options.measure,
                         variants=self.options.variants, timeout_s=self.options.timeout_s,
                         threads=self.options.threads)
        if case.params.get("mode") == DUEL:
            # incumbent vs candidate, interleaved in one worker; correctness was judged before the duel
            samples = time_interleaved(self.kernel, str(case.params["incumbent"]), artifact.content, cfg,
                                       sizes=sizes, pairs=int(case.params.get("pairs", self.options.duel_pairs)))
            return {"mode": DUEL, "samples": {k: [a, b] for k, (a, b) in samples.items()}}
        cfg.seed_offset = int(case.params.get("variant_offset", 0))
        return evaluate_kernel(self.kernel, artifact.content, cfg, sizes=sizes, use_ceilings=False)

    def duel_case(self, incumbent: str, sizes: list[dict[str, Any]], pairs: int | None = None) -> Case:
        """A case that times ``incumbent`` against the artifact interleaved (in the sandbox, like any case)."""
        return Case(DUEL, "selection", {"mode": DUEL, "incumbent": incumbent, "sizes": sizes,
                                        "pairs": pairs or self.options.duel_pairs})

    def _judge_duel(self, case: Case, output: Any) -> CaseResult:
        """Promotion decision from raw interleaved samples, recomputed here (never trusted from the sandbox)."""
        from synthloop.tasks.kernels.promotion import decide

        labels = [s["label"] for s in case.params["sizes"]]
        samples = output.get("samples") if isinstance(output, dict) else None
        if not isinstance(samples, dict) or sorted(samples) != sorted(labels):
            return CaseResult(case.id, ok=False, diagnostics=["malformed duel output"], error_kind="output")
        clean: dict[str, tuple[list[float], list[float]]] = {}
        for label in labels:
            pair = samples[label]
            ok = (isinstance(pair, list) and len(pair) == 2 and all(
                isinstance(xs, list) and len(xs) >= 2 and all(
                    isinstance(x, (int, float)) and math.isfinite(x) and x > 0 for x in xs) for xs in pair))
            if not ok:
                return CaseResult(case.id, ok=False, diagnostics=[f"{label}: malformed duel timings"],
                                  error_kind="output")
            clean[label] = ([float(x) for x in pair[0]], [float(x) for x in pair[1]])
        d = decide(clean, delta=self.options.promote_delta)
        metrics = {"speedup": d.speedup, "ci_low": d.ci_low, "ci_high": d.ci_high, "promote": float(d.promote)}
        metrics.update({f"{k}:speedup": v for k, v in d.per_size.items()})
        per = ", ".join(f"{k} {v:.3f}x" for k, v in d.per_size.items())
        line = (f"speedup over the incumbent {d.speedup:.3f}x [95% CI {d.ci_low:.3f}, {d.ci_high:.3f}] ({per}): "
                f"{'promote' if d.promote else 'keep the incumbent'}, {d.reason}")
        return CaseResult(case.id, ok=True, score=d.speedup, metrics=metrics, diagnostics=[line],
                          private={"decision": d.to_dict(),
                                   "samples": {k: [list(a), list(b)] for k, (a, b) in clean.items()}})

    def _score_sizes(self, case: Case, output: dict[str, Any], wanted: dict[str, Size], ceilings: Any
                     ) -> CaseResult | tuple[list[dict[str, Any]], list[float | None], list[str]]:
        """Per-size rows (fitness recomputed from the raw timings), fractions and implausibility flags; a
        failed ``CaseResult`` when the sandbox's output is malformed."""
        from synthloop.tasks.kernels.fitness import size_fitness

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
        return rows, fracs, flags

    def judge(self, artifact: Artifact, case: Case, output: Any) -> CaseResult:
        from synthloop.tasks.kernels.ceilings import get_ceilings, recheck_ceilings
        from synthloop.tasks.kernels.evaluate import format_result
        from synthloop.tasks.kernels.fitness import gmean_score

        if case.params.get("mode") == DUEL:
            return self._judge_duel(case, output)
        if not isinstance(output, dict) or not isinstance(output.get("sizes"), list):
            return CaseResult(case.id, ok=False, diagnostics=["malformed output from the sandbox"],
                              error_kind="output")
        if output.get("error_kind") in ("compile", "static_check"):
            return CaseResult(case.id, ok=False, diagnostics=[str(output.get("fail_reason", ""))[:4000]],
                              error_kind=str(output["error_kind"]))
        wanted = {s["label"]: Size(s["label"], s["params"]) for s in case.params["sizes"]}
        ceilings = get_ceilings(self.options.backend, threads=self.options.threads)
        scored = self._score_sizes(case, output, wanted, ceilings)
        if isinstance(scored, CaseResult):
            return scored
        rows, fracs, flags = scored
        rechecked = None
        if flags:  # faster than the cached ceilings: they may have been measured on a busy machine
            rechecked = recheck_ceilings(self.options.backend, ceilings, threads=self.options.threads)
            if rechecked is not None:
                rescored = self._score_sizes(case, output, wanted, rechecked)
                assert not isinstance(rescored, CaseResult)  # the same output passed the shape checks above
                rows, fracs, flags = rescored
        if set(wanted) - {r["label"] for r in rows}:
            return CaseResult(case.id, ok=False, diagnostics=["sizes missing from the output"], error_kind="output")
        score = gmean_score(fracs)
        packet = format_result({"sizes": rows, "score": score})
        metrics = {"fraction_of_attainable": score}
        for r in rows:  # per-size numbers for `synthloop eval --json` (prompts show only the task's metrics)
            metrics[f"{r['label']}:correct"] = float(bool(r["correct"]))
            if r.get("fitness"):
                metrics[f"{r['label']}:time_ms"] = r["fitness"]["t_median_s"] * 1e3
                metrics[f"{r['label']}:fraction"] = r["fitness"]["fraction"]
        if all(f is not None for f in fracs):
            metrics["worst_fraction"] = float(min(f for f in fracs if f is not None))
        private = {"sizes": rows, "flags": flags, "warnings": output.get("warnings", [])}
        if rechecked is not None:
            private["ceilings_remeasured"] = rechecked.summary_lines()
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

    # ---- the task-owned search loop and held-out gate (see search.py, run_gate.py) ----
    async def search(self, engine: Any) -> Any:
        """Kernel search: noise-aware (1+1), refine or best-of-n per ``engine.cfg.search.strategy``."""
        from synthloop.tasks.kernels.search import run_search

        return await run_search(engine)

    async def gate(self, engine: Any, finalists: list[tuple[str, Any]]) -> dict[str, Any]:
        """Held-out gate: correctness and interleaved speedup CIs against the seed, in-distribution vs held-out."""
        from synthloop.tasks.kernels.run_gate import kernel_gate

        return await kernel_gate(engine, finalists)

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
        "description": f"{name} ({spec.regime}) of the Metal-Sci suite (arXiv 2605.09708): roofline-scored kernel"
                       " search on cpu/cuda",
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
