"""A tiny task and helpers for executor tests: the artifact defines ``main()``; ``run`` returns its value.

Importable by module path (``exec_tasks:EchoTask``) so Ray workers can rebuild it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from synthloop.core.task import Task
from synthloop.core.types import Artifact, Case, CasePools, CaseResult

TASK_NAME = "tests/exec_echo"


class EchoTask(Task):
    name = "tests/exec_echo"
    description = "runs main() from the artifact"

    def brief(self) -> str:
        return "define main()"

    def pools(self) -> CasePools:
        return CasePools(feedback=[Case("f0", "feedback")])

    def run(self, artifact: Artifact, case: Case) -> Any:
        ns: dict[str, Any] = {"case": case.to_dict()}
        exec(compile(artifact.content, "<candidate>", "exec"), ns)
        return ns["main"]()

    def judge(self, artifact: Artifact, case: Case, output: Any) -> CaseResult:
        return CaseResult(case.id, ok=True, score=float(output) if isinstance(output, (int, float)) else 0.0)


def register() -> None:
    from synthloop.tasks.registry import register as reg

    reg(TASK_NAME, "exec_tasks:EchoTask")


SECRET = "sk-test-" + "secret-4f1c"  # built at run time so the literal is not in any code object


def art(body: str) -> Artifact:
    """An artifact whose main() has ``body`` (dedented, one statement per line)."""
    lines = "\n".join("    " + ln for ln in body.strip("\n").splitlines())
    return Artifact("def main():\n" + lines + "\n")


def case(i: int | str = 0) -> Case:
    return Case(str(i), "feedback")


def descendants(pid: int) -> list[int]:
    """Every live (non-zombie) process whose ancestry includes ``pid``, via /proc."""
    parent: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parent[int(name)] = int(fields[1])
    out = []
    for p in parent:
        q = p
        while q in parent and q > 1:
            q = parent[q]
            if q == pid:
                out.append(p)
                break
    return out


def wait_gone(pids: list[int], timeout: float = 2.0) -> list[int]:
    """Live (non-zombie) processes among ``pids`` still present after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for p in pids:
            try:
                if Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(p)
            except OSError:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.02)
