"""The measurement loop, shared by every backend (runs where the candidate runs).

Protocol per size, the same on every backend:

1. allocate every buffer with guard zones (256 bytes of a sentinel pattern on
   both sides) so writes outside a buffer are detectable afterwards;
2. stage the initial inputs of each *input variant* (different seeds);
3. warm-ups, then ``measure`` timed repetitions; before every repetition the
   state is restored from the staged variant (outside the timed window) and
   variants alternate, so a kernel that memoises results for a repeated input
   gains nothing and is caught when its replayed output meets a new input;
4. check runs: the outputs *and* the ``in`` buffers are dumped after the first
   measured repetition (variant 0), after the last one (another variant) and
   after an extra untimed repetition of variant 0 (a determinism re-run);
5. guard zones are inspected once at the end.

Nothing here judges correctness: the dumps go back to the trusted parent
(:mod:`synthloop.tasks.kernels.evaluate`), which compares them against fresh
references. All timing samples are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from synthloop.tasks.kernels.spec import BufferSpec, KernelTask, Size, variant_seed

GUARD_BYTES = 256
GUARD_BYTE = 0xA5


class Device(Protocol):
    """What the loop needs from a backend."""

    def alloc(self, spec: BufferSpec) -> Any: ...

    def stage(self, array: np.ndarray) -> Any: ...

    def restore(self, buf: Any, staged: Any | None) -> None:
        """Copy staged contents into the buffer (``None``: zero it)."""

    def download(self, buf: Any) -> np.ndarray: ...

    def guard_ok(self, buf: Any) -> bool: ...

    def prepare(self, task: KernelTask, p: Size, bufs: dict[str, Any]) -> Any:
        """Bind the schedule once; returns an opaque repetition handle."""

    def run(self, rep: Any) -> float:
        """Run one repetition and return its time in seconds."""

    def info(self) -> dict[str, Any]: ...


@dataclass
class RawRun:
    """What a backend run brings back for one size (arrays only in-process)."""

    times_s: list[float] = field(default_factory=list)
    warmup_s: list[float] = field(default_factory=list)
    dumps: dict[str, dict[str, Any]] = field(default_factory=dict)  # check -> {"variant", "buffers": {name: arr}}
    guards_corrupted: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def dumped_buffers(task: KernelTask, p: Size) -> list[str]:
    """Buffers dumped at each check run: every output buffer and every read-only input."""
    names = list(dict.fromkeys(task.outputs(p).values()))
    names += [b.name for b in task.buffers(p) if b.role == "in" and b.name not in names]
    return names


CHECK_RUNS: tuple[str, ...] = ("first", "last", "repeat")


def check_seeds(task: KernelTask, variants: int, seed_offset: int = 0) -> list[int]:
    """Input seeds of the variants (variant 0 of offset 0 is the spec's seed)."""
    return [variant_seed(task.input_seed, v + seed_offset) for v in range(max(1, variants))]


def check_variant(check: str, measure: int, variants: int) -> int:
    """Which variant a check run uses: first and repeat use 0, last uses the last repetition's."""
    return (max(1, measure) - 1) % max(1, variants) if check == "last" else 0


def measure_size(task: KernelTask, p: Size, device: Device, *, warmup: int, measure: int,
                 variants: int = 2, checks: tuple[str, ...] = CHECK_RUNS, seed_offset: int = 0) -> RawRun:
    """Run the protocol above for one size (``checks`` selects which check runs are dumped)."""
    specs = task.buffers(p)
    bufs = {b.name: device.alloc(b) for b in specs}
    seeds = check_seeds(task, variants, seed_offset)
    staged: list[dict[str, Any]] = []
    for s in seeds:
        init = task.init(p, s)
        staged.append({name: device.stage(np.ascontiguousarray(arr)) for name, arr in init.items()})
    rep = device.prepare(task, p, bufs)
    keep = dumped_buffers(task, p)

    def reset(v: int) -> None:
        for b in specs:
            device.restore(bufs[b.name], staged[v].get(b.name) if b.role in ("in", "inout") else None)

    def dump(v: int) -> dict[str, Any]:
        return {"variant": v, "seed": seeds[v], "buffers": {n: device.download(bufs[n]) for n in keep}}

    raw = RawRun(info=device.info())
    for w in range(warmup):
        reset(w % len(seeds))
        raw.warmup_s.append(device.run(rep))
    n = max(1, measure)
    for r in range(n):
        v = r % len(seeds)
        reset(v)
        raw.times_s.append(device.run(rep))
        if r == 0 and "first" in checks:
            raw.dumps["first"] = dump(v)
        if r == n - 1 and n > 1 and "last" in checks:
            raw.dumps["last"] = dump(v)
    if "repeat" in checks:
        reset(0)
        device.run(rep)
        raw.dumps["repeat"] = dump(0)
    raw.guards_corrupted = [name for name, b in bufs.items() if not device.guard_ok(b)]
    return raw


def measure_interleaved(task: KernelTask, p: Size, device: Device, modules: tuple[Any, Any], *,
                        warmup: int, pairs: int, rng_seed: int = 0) -> tuple[list[float], list[float]]:
    """Time two candidates on the same buffers in alternation (AB or BA, chosen at random per pair).

    Interleaving makes slow drifts (clock boost, a neighbour's load) hit both
    candidates alike, which is what makes per-pair log ratios comparable.
    ``modules`` are whatever ``device.prepare`` needs to select a candidate; the
    device must accept ``prepare(task, p, bufs, module=...)``.
    """
    specs = task.buffers(p)
    bufs = {b.name: device.alloc(b) for b in specs}
    init = task.init(p, task.input_seed)
    staged = {name: device.stage(np.ascontiguousarray(arr)) for name, arr in init.items()}
    reps = [device.prepare(task, p, bufs, module=m) for m in modules]  # type: ignore[call-arg]

    def reset() -> None:
        for b in specs:
            device.restore(bufs[b.name], staged.get(b.name) if b.role in ("in", "inout") else None)

    for _ in range(warmup):
        for r in reps:
            reset()
            device.run(r)
    rng = np.random.default_rng(rng_seed)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(pairs):
        order = (0, 1) if rng.random() < 0.5 else (1, 0)
        for k in order:
            reset()
            times[k].append(device.run(reps[k]))
    return times
