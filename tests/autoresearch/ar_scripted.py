"""Scripted answers for the autoresearch tests (a module with a unique name: no clash with other conftests)."""

import json


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
