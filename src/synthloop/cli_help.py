"""Help that typer cannot generate by itself: a task's own options, and the options of forwarded commands.

``synthloop run TASK --help`` cannot know TASK's options when typer prints the generic help (they are a
pydantic model chosen by the argument), so the entry point prints them after it, from the model itself:
the same source the flags are parsed against, so help and parsing cannot disagree. ``synthloop tasks TASK``
prints the same table.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def type_label(annotation: Any) -> str:
    """A short, user-facing spelling of a field type: ``int``, ``cpu|cuda``, ``list[int]``, ``str``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "|".join(str(a) for a in args)
    if args and type(None) in args:  # X | None: None is the default, not something to type
        rest = [a for a in args if a is not type(None)]
        return type_label(rest[0]) if len(rest) == 1 else " | ".join(type_label(a) for a in rest)
    if origin in (list, tuple, set):
        return f"{origin.__name__}[{', '.join(type_label(a) for a in args if a is not Ellipsis)}]"
    if origin is dict:
        return "dict"
    return getattr(annotation, "__name__", str(annotation))


def option_rows(model: Any) -> list[dict[str, str]]:
    """One row per field of a pydantic options model: flag, type, default, description (with its bounds)."""
    rows = []
    for name, field in model.model_fields.items():
        try:
            default = field.get_default(call_default_factory=True)
        except Exception:  # a factory that needs validated data: say so instead of guessing
            default = "(computed)"
        bounds = [f"{sign} {getattr(m, attr)}" for m in field.metadata for attr, sign in _BOUNDS if hasattr(m, attr)]
        text = field.description or ""
        if bounds:
            text = f"{text} ({', '.join(bounds)})" if text else ", ".join(bounds)
        rows.append({"name": name, "flag": "--" + name.replace("_", "-"), "type": type_label(field.annotation),
                     "default": _show(default), "description": text})
    return rows


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return f"[{', '.join(map(str, value[:3]))}, ... {len(value)} values]"
    return "-" if value is None else str(value)


def task_option_lines(task_name: str) -> list[str]:
    """The options of ``task_name`` as printable lines; raises UnknownTask for a name that is not a task."""
    from synthloop.tasks.registry import task_class

    rows = option_rows(task_class(task_name).Options)
    if not rows:
        return [f"{task_name} has no options of its own."]
    lines = [f"Options of {task_name} (as flags after TASK, e.g. {rows[0]['flag']} VALUE; or "
             f"--set task_options.{rows[0]['name']}=VALUE):"]
    return lines + _table([(r["flag"], r["type"], f"default {r['default']}", r["description"]) for r in rows])


def command_option_lines(command: Any) -> list[str]:
    """The options of a click/typer command object (``--policy``, ``--seeds``, ...) as printable lines."""
    rows = []
    for p in getattr(command, "params", []):
        if getattr(p, "param_type_name", "") != "option":
            continue
        flags = ", ".join([*p.opts, *getattr(p, "secondary_opts", [])])
        default = getattr(p, "default", None)
        shown = "" if default is None or getattr(p, "is_flag", False) else f"default {_show(default)}"
        rows.append((flags, "", shown, getattr(p, "help", None) or ""))
    return _table(rows)


def _table(rows: Sequence[tuple[str, str, str, str]]) -> list[str]:
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(3)]
    return [("  " + "  ".join(c.ljust(w) for c, w in zip(r[:3], widths) if w) + "  " + r[3]).rstrip()
            for r in rows]


def positional_after(command: Any, args: Sequence[str]) -> str | None:
    """The first positional argument of ``command`` in ``args`` (its own arguments, not its name).

    Mirrors how typer parses these commands (unknown options are passed through without a value), so
    ``run --model mutate kernels/saxpy --help`` names ``kernels/saxpy``.
    """
    valued = {o for p in getattr(command, "params", []) if getattr(p, "param_type_name", "") == "option"
              and not getattr(p, "is_flag", False) and not getattr(p, "count", False) for o in p.opts}
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return args[i + 1] if i + 1 < len(args) else None
        if a.startswith("-"):
            i += 2 if a in valued else 1
            continue
        return a
    return None


def print_help_extras(app: Any, args: Sequence[str]) -> None:
    """After typer's help of ``run`` or ``eval``: the options typer cannot list by itself.

    ``run TASK --help`` and ``eval TASK --help``: TASK's own options. ``eval --help`` (or ``eval ssd/...``):
    the options of the policy evaluation that ``eval ssd/<game>`` without ``--artifact`` forwards to.
    Raises UnknownTask for a TASK that is not one (the caller prints it as a one-line error).
    """
    if not args or args[0] not in ("run", "eval"):
        return
    import typer.main

    command = typer.main.get_command(app).commands.get(args[0])  # type: ignore[attr-defined]
    task = positional_after(command, [a for a in args[1:] if a != "--help"])
    sections: list[list[str]] = []
    if args[0] == "eval" and (task is None or task.startswith("ssd/")):
        from synthloop.tasks.ssd.cli import app as ssd_app

        ssd_eval = typer.main.get_command(ssd_app).commands["eval"]  # type: ignore[attr-defined]
        sections.append(["eval ssd/gathering|ssd/cleanup without --artifact evaluates a policy over seeds "
                         "(as `synthloop ssd eval`), with these options:", *command_option_lines(ssd_eval)])
    if task is not None:
        sections.append(task_option_lines(task))
    else:
        sections.append(["A task's own options are flags too: `synthloop tasks TASK` or "
                         f"`synthloop {args[0]} TASK --help` lists them."])
    print("\n\n".join("\n".join(lines) for lines in sections))
