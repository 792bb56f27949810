"""GPU check: every seed kernel on the ``cuda`` backend at the H100 ladders of the spec (§6.5).

Usage (no pydantic or synthloop install needed; numpy, numba and cupy are):

    PYTHONPATH=src python3 benchmarks/gpu_check_kernels.py --json-out $OUT/gpu.json

Prints the measured ceilings (triad bandwidth at L2- and HBM-sized footprints, FMA-chain peak, theoretical
numbers), then per task and size: correctness, median time, achieved rate and fraction of the attainable
ceiling. Defaults are sized to finish in under 5 minutes on an H100 host: 2 warm-ups, 5 measured
repetitions, one input variant (halves the reference work), and a time budget after which remaining tasks
are skipped (reported as skipped, never silently dropped). One task's failure never stops the others.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from synthloop.tasks.kernels.bench import main  # noqa: E402

DEFAULTS = ["--backend", "cuda", "--warmup", "2", "--measure", "5", "--variants", "1", "--budget-s", "250",
            "--timeout", "150",
            "--checks", "first"]


if __name__ == "__main__":
    os.environ.setdefault("SYNTHLOOP_REF_DISK_LIMIT", "0")  # references at GPU sizes are large: memory only
    t0 = time.time()
    try:
        import cupy

        print(f"cupy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
              f"driver {cupy.cuda.runtime.driverGetVersion()}", flush=True)
    except Exception as e:  # still run main(): it reports the missing device cleanly
        print(f"cupy unavailable: {e}", flush=True)
    rc = main(DEFAULTS + sys.argv[1:])
    print(f"gpu_check_kernels: exit {rc} after {time.time() - t0:.1f} s", flush=True)
    raise SystemExit(rc)
