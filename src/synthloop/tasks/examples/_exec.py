"""Load a Python artifact as a fresh module (inside the sandbox only)."""

from __future__ import annotations

import types
from typing import Any

from synthloop.core.types import Artifact


def load_module(artifact: Artifact, name: str = "candidate") -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__["__builtins__"] = __builtins__
    code = compile(artifact.content, f"<{name}>", "exec")
    exec(code, mod.__dict__)  # noqa: S102 - runs only inside the sandboxed worker
    return mod


def entry_point(artifact: Artifact, fn: str) -> Any:
    mod = load_module(artifact)
    f = getattr(mod, fn, None)
    if not callable(f):
        raise NameError(f"the artifact must define a function {fn}()")
    return f
