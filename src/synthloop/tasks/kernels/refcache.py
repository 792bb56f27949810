"""Inputs and references cached per (task, task version, size, input seed): in memory, and on disk when small.

References are deterministic functions of the inputs, and the inputs of the seed, so caching is safe;
the disk key also carries a digest of the inputs, so a changed initialiser can never meet a stale
reference. What is never cached is a *candidate's* output: every check compares a fresh dump.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict

import numpy as np

from synthloop.tasks.kernels.paths import cache_dir
from synthloop.tasks.kernels.spec import KernelTask, Size

DISK_LIMIT_BYTES = int(os.environ.get("SYNTHLOOP_REF_DISK_LIMIT", 256 << 20))
MEM_LIMIT_BYTES = int(os.environ.get("SYNTHLOOP_REF_MEM_LIMIT", 6 << 30))
_MEM: OrderedDict[tuple[str, int, str, int], tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = OrderedDict()


def _nbytes(entry: tuple[dict[str, np.ndarray], dict[str, np.ndarray]]) -> int:
    return sum(a.nbytes for d in entry for a in d.values())


def _digest(inputs: dict[str, np.ndarray]) -> str:
    h = hashlib.blake2b(digest_size=8)
    for k in sorted(inputs):
        h.update(k.encode())
        h.update(np.ascontiguousarray(inputs[k]).view(np.uint8).data)
    return h.hexdigest()


def get(task: KernelTask, p: Size, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(inputs, reference outputs) for one size and input seed."""
    key = (task.name, task.version, p.key(), int(seed))
    if key in _MEM:
        _MEM.move_to_end(key)
        return _MEM[key]
    inputs = task.init(p, seed)
    if not task.needs_reference():
        ref: dict[str, np.ndarray] = {}
    else:
        ref = _from_disk_or_compute(task, p, seed, inputs)
    entry = (inputs, ref)
    _MEM[key] = entry
    total = sum(_nbytes(e) for e in _MEM.values())
    while len(_MEM) > 1 and total > MEM_LIMIT_BYTES:
        _, old = _MEM.popitem(last=False)
        total -= _nbytes(old)
    return entry


def _from_disk_or_compute(task: KernelTask, p: Size, seed: int, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    small = sum(a.nbytes for a in inputs.values()) <= DISK_LIMIT_BYTES
    path = None
    if small:
        path = cache_dir("refs") / f"{task.name}-v{task.version}-{p.key()}-{seed:08x}-{_digest(inputs)}.npz"
        if path.exists():
            try:
                with np.load(path) as z:
                    return {k: z[k] for k in z.files}
            except (OSError, ValueError):
                pass
    ref = task.reference(p, inputs)
    if path is not None and 0 < sum(a.nbytes for a in ref.values()) <= DISK_LIMIT_BYTES:
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **ref)  # type: ignore[arg-type]
        os.replace(tmp, path)
    return ref
