"""Scripted answers for the autoresearch tests (a module with a unique name: no clash with other conftests)."""

import json
from pathlib import Path

from synthloop.autoresearch.jail import JailPolicy, probe


def program(x: float) -> str:
    return f"Here you go.\n```python\ndef value():\n    x = {x}  # tunable\n    return x\n```"


def synth_responder(req: dict) -> str:
    """The scripted synthesizer: its answer depends only on what the pipeline put in the system prompt."""
    system = next(m["content"] for m in req["messages"] if m["role"] == "system")
    if "BE BOLD" in system:
        return program(0.9)
    if "be timid" in system:
        return program(0.2)
    return program(0.3)


def tool(name: str, **args) -> str:
    return "I will act now.\n```json\n" + json.dumps({"tool": name, "args": args}) + "\n```"


def agent_script(tmp_path: Path, name: str, text: str) -> Path:
    """An external researcher's script, in its own directory beside (never inside) the run directory."""
    d = tmp_path / "agent"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text)
    return d / name


def jail_for(script: Path, **kw) -> JailPolicy:
    """The strongest jail this machine grants, with the script's directory shown read-only (it lies under /tmp,
    which the jail replaces by a private tmpfs); unjailed only where no jail is available (printed)."""
    for mode in ("namespace", "bwrap"):
        if not probe(mode, kw.get("network", "host")):
            return JailPolicy(mode=mode, binds=(str(script.parent),), **kw)
    print(f"no researcher jail on this machine (namespace: {probe('namespace')}; bwrap: {probe('bwrap')}):"
          " the external researcher runs unjailed")
    return JailPolicy(mode="none", **kw)
