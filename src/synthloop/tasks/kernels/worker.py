"""The child process that executes candidate kernels: ``python -m synthloop.tasks.kernels.worker``.

It reads one JSON request on stdin and writes, per size, ``size_<i>.npz`` (the dumped buffers) and then
``size_<i>.json`` (timings, guard status, backend info; written last, atomically, so the parent can tell a
finished size from one that crashed or hung). It never judges correctness: a kernel can scribble over
anything in this process, so the trusted parent recomputes every verdict from the dumps.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.tasks.kernels.catalog import get_task
from synthloop.tasks.kernels.runner import CHECK_RUNS, measure_interleaved, measure_size
from synthloop.tasks.kernels.spec import Size

RESTART_EXIT = 75


def make_device(backend: str, module: str, options: dict[str, Any]) -> Any:
    if backend == "cpu":
        from synthloop.tasks.kernels.cpu_backend import CpuDevice

        return CpuDevice(module)
    if backend == "cuda":
        from synthloop.tasks.kernels.cuda_backend import CudaDevice

        return CudaDevice(module, **options)
    raise ValueError(f"unknown backend {backend!r}")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def serve(req: dict[str, Any]) -> None:
    out = Path(req["out_dir"])
    task = get_task(req["task"])
    sizes = [Size(s["label"], s["params"]) for s in req["sizes"]]
    try:
        device = make_device(req["backend"], req["module"], req.get("device_options", {}))
    except Exception as e:  # compile errors (cuda) and load errors (cpu) end the whole request
        kind = getattr(e, "kind", "load")
        _write_json(out / "setup.json", {"error": f"{type(e).__name__}: {e}", "error_kind": kind})
        return
    for i in range(req.get("start", 0), len(sizes)):
        p = sizes[i]
        result: dict[str, Any] = {"index": i, "label": p.label}
        try:
            if req.get("mode", "measure") == "interleave":
                a, b = measure_interleaved(task, p, device, (req["module"], req["module_b"]), warmup=req["warmup"],
                                           pairs=req["pairs"], rng_seed=req.get("rng_seed", 0) + i)
                result.update(times_a=a, times_b=b, info=device.info())
            else:
                raw = measure_size(task, p, device, warmup=req["warmup"], measure=req["measure"],
                                   variants=req.get("variants", 2),
                                   checks=tuple(req.get("checks", CHECK_RUNS)),
                                   seed_offset=req.get("seed_offset", 0))
                arrays = {f"{check}__{name}": arr for check, d in raw.dumps.items() for name, arr in d["buffers"].items()}
                np.savez(out / f"size_{i}.npz", **arrays)
                result.update(times_s=raw.times_s, warmup_s=raw.warmup_s, guards_corrupted=raw.guards_corrupted,
                              info=raw.info,
                              checks={c: {"variant": d["variant"], "seed": d["seed"]} for c, d in raw.dumps.items()})
        except Exception as e:
            result.update(error=f"{type(e).__name__}: {e}", error_kind=getattr(e, "kind", "runtime"),
                          traceback=traceback.format_exc(limit=3)[-2000:])
            if getattr(e, "fatal", False):  # poisoned CUDA context: let the parent start a fresh worker
                _write_json(out / f"size_{i}.json", result)
                sys.stdout.flush()
                os._exit(RESTART_EXIT)
        _write_json(out / f"size_{i}.json", result)


def main() -> int:
    req = json.loads(sys.stdin.read())
    serve(req)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
