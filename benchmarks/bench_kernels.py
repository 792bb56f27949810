"""Run ``synthloop bench kernels`` without the CLI: ``python benchmarks/bench_kernels.py --backend cpu``."""

from __future__ import annotations

import sys

from synthloop.tasks.kernels.bench import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
