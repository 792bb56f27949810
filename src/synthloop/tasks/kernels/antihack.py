"""Anti-hacking checks that do not need a run: a static checker for candidate sources.

The dynamic checks live where the data is (see :mod:`synthloop.tasks.kernels.evaluate`):

=========================  =====================================================================
hack (peers.md §2.9)       check
=========================  =====================================================================
return zeros / the input   checker against a fresh reference; tolerance is checked to separate the
                           reference from zeros and from the initial state (tests/kernels)
skip work / memoise        inputs alternate between variants with different seeds per repetition;
                           the last measured repetition (another variant) and a re-run of variant
                           0 are checked, so replayed results fail
mutate inputs              ``in`` buffers are dumped after check runs and compared bit-for-bit with
                           freshly regenerated inputs in the parent
write outside buffers      256-byte guard zones around every buffer, inspected after the runs
tamper with the checker    the kernel runs in a child process; verdicts are computed in the parent
hang / crash               child killed at the per-size timeout; a crash is attributed to its size
implausible speed          raw fraction of the attainable ceiling above 1.10 is flagged for review
timer / process tricks     static checker below (threads, fork, timers, dlsym, asm, libraries)
=========================  =====================================================================

The static checker is a regex rule set in the spirit of KernelBench's: it catches the obvious moves and
gives precise messages; safety does not depend on it (process isolation and the parent-side verdicts do).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_COMMON_FORBIDDEN: list[tuple[str, str]] = [
    (r"\bfork\s*\(|\bvfork\s*\(|\bexec[lv]p?e?\s*\(|\bsystem\s*\(|\bpopen\s*\(", "spawning processes"),
    (r"\bdlopen\s*\(|\bdlsym\s*\(", "dynamic symbol lookup"),
    (r"\bsyscall\s*\(|\bmprotect\s*\(|\bmmap\s*\(|\bptrace\s*\(", "raw system calls / memory mapping"),
    (r"\bfopen\s*\(|\bopen\s*\(|\bfreopen\s*\(|\bunlink\s*\(", "file access"),
    (r"\bgetenv\s*\(|\bsetenv\s*\(|\bputenv\s*\(", "environment access"),
    (r"\bclock_gettime\s*\(|\bgettimeofday\s*\(|\b__rdtsc\s*\(|\brdtsc\b|\bomp_get_wtime\s*\(|\btime\s*\(\s*(?:NULL|0)?\s*\)",
     "reading clocks (timer tricks)"),
    (r"\bsignal\s*\(|\bsigaction\s*\(|\bsetjmp\s*\(|\blongjmp\s*\(|\bexit\s*\(|\babort\s*\(", "control-flow escapes"),
    (r"__attribute__\s*\(\(\s*(?:constructor|destructor)", "load-time constructors"),
    (r"#\s*include\s*[<\"]\s*Python\.h|\bPy[A-Z]\w*\s*\(", "Python C-API"),
    (r"#\s*include\s*[<\"]\s*(?:fftw3?|mkl\w*|cblas|lapacke|cufft\w*|cublas\w*|cusparse\w*|curand\w*)",
     "external numerical libraries"),
    (r"\bfftw\w*\s*\(|\bcblas_\w+\s*\(|\bcufft\w+\s*\(|\bcublas\w+\s*\(", "external numerical libraries"),
]
_CPU_FORBIDDEN: list[tuple[str, str]] = [
    (r"#\s*include\s*[<\"]\s*pthread\.h|\bpthread_create\s*\(|\bthrd_create\s*\(", "raw threads (use OpenMP)"),
    (r"\basm\b|\b__asm__\b|\b__asm\b", "inline assembly"),
]
_CUDA_FORBIDDEN: list[tuple[str, str]] = [
    (r"\bcudaMalloc\w*\s*\(|\bcudaMemcpy\w*\s*\(|\bcudaStream\w*\s*\(|\bcudaGraph\w*\s*\(|\bcudaEvent\w*\s*\(",
     "host runtime API calls in kernel source"),
    (r"%globaltimer|%clock64|\bclock64\s*\(|\bclock\s*\(", "reading GPU clocks (timer tricks)"),
]
_WARNINGS: list[tuple[str, str, str]] = [  # (pattern, message, backends)
    (r"(?m)^\s*static\s+(?!const\b|inline\b|__device__\b|__forceinline__\b)[\w\s\*]+\b\w+\s*(?:\[[^\]]*\])*\s*(?:=|;)",
     "mutable static state (results may not be memoised across calls)", "cpu cuda"),
    (r"__device__\s+(?!__forceinline__|inline|const)\w[\w\s\*]*\b\w+\s*(?:\[[^\]]*\])*\s*(?:=|;)",
     "mutable __device__ global state (results may not be memoised across launches)", "cuda"),
    (r"\basm\s*(?:volatile)?\s*\(", "inline PTX assembly", "cuda"),
]


@dataclass
class StaticReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def strip_comments(src: str) -> str:
    """Remove comments and string literals so rules match code only (line numbers preserved)."""
    def repl(m: re.Match[str]) -> str:
        s = m.group(0)
        return "\n" * s.count("\n") if s.startswith("/") else '""'

    return re.sub(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\])*\"", repl, src, flags=re.S)


def _line(src: str, pos: int) -> int:
    return src.count("\n", 0, pos) + 1


def static_check(source: str, backend: str, entry_points: list[str] | None = None) -> StaticReport:
    """Static checks for a candidate source (errors reject the candidate before it is built)."""
    code = strip_comments(source)
    rep = StaticReport()
    rules = _COMMON_FORBIDDEN + (_CPU_FORBIDDEN if backend == "cpu" else _CUDA_FORBIDDEN)
    for pattern, what in rules:
        m = re.search(pattern, code)
        if m:
            rep.errors.append(f"line {_line(code, m.start())}: forbidden construct ({what}): {m.group(0).strip()!r}")
    for pattern, what, backends in _WARNINGS:
        if backend not in backends.split():
            continue
        m = re.search(pattern, code)
        if m:
            rep.warnings.append(f"line {_line(code, m.start())}: {what}")
    for name in entry_points or []:
        if not re.search(rf"\b{re.escape(name)}\s*\(", code):
            rep.errors.append(f"entry point {name!r} is not defined")
    return rep
