"""How a `synthloop` command ends: an exit code, and at most one line on stderr when it failed.

The contract (README, issue 14): a usage or input error is one line ``error: ...`` and exit code 2; help
is exit code 0; Ctrl-C is exit code 130 with the resume hint; nothing reaches the user as a traceback.

typer up to 0.28 runs on the ``click`` package; typer 0.29 and later vendors its own copy
(``typer._click``) and no longer installs ``click``. The project does not declare ``click``, so its
exception classes are never imported by name: the usage-error base class is found through typer's public
``typer.BadParameter`` (a subclass of it in every typer since 0.12), and ``typer.Exit`` and
``typer.Abort`` are typer's own names for the other two in both worlds.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from typing import Any

import typer

#: exit status of a usage or input error, and of Ctrl-C (128 + SIGINT), as shells and click use them
USAGE, INTERRUPTED = 2, 130


def usage_error_types() -> tuple[type[BaseException], ...]:
    """The exception classes typer raises for a bad command line, whichever click it runs on."""
    found: list[type[BaseException]] = [
        c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException" and issubclass(c, Exception)
    ]
    base = getattr(typer, "TyperException", None)  # typer >= 0.29: ClickException's own base class
    if isinstance(base, type) and issubclass(base, Exception):
        found.append(base)
    return tuple(found) or (typer.BadParameter,)


def say(line: str) -> None:
    """One line on stderr, unwrapped and without markup (messages quote user input and file paths)."""
    print(line, file=sys.stderr, flush=True)


def error(message: object) -> int:
    """``error: <message>`` on one line (a multi-line message is joined); returns the usage exit code."""
    say("error: " + " ".join(str(message).split()))
    return USAGE


def usage_message(exc: BaseException) -> str:
    """``exc`` (a click usage error) as one line, with the valid subcommands when one was mistyped."""
    fmt = getattr(exc, "format_message", None)
    msg = " ".join(str(fmt() if callable(fmt) else exc).split())
    ctx: Any = getattr(exc, "ctx", None)
    command = getattr(ctx, "command", None)
    if msg.startswith("No such command") and command is not None and hasattr(command, "list_commands"):
        names = sorted(n for n in command.list_commands(ctx) if not getattr(command.get_command(ctx, n), "hidden", False))
        msg = f"{msg.rstrip('.')}; valid choices: {', '.join(names)}"
    elif ctx is not None and getattr(ctx, "command_path", None):
        msg = f"{msg} (see `{ctx.command_path} --help`)"
    return msg


_interrupt_told: list[str] = []  # the hint is printed once, by whoever knows the run directory first


def interrupted(run_dir: object = None) -> int:
    """Ctrl-C: one line, with the resume command when a run directory exists; returns exit code 130."""
    if not _interrupt_told:
        hint = f"; resume with: synthloop resume {run_dir}" if run_dir is not None else ""
        _interrupt_told.append(hint)
        say(f"interrupted{hint}")
    return INTERRUPTED


def invoke(app: Any, args: list[str], prog_name: str) -> int:
    """Run a typer app on ``args`` and return its exit code: help is 0, a usage error one line and 2,
    Ctrl-C 130. Domain exceptions propagate to the caller, which knows which ones are the user's mistakes."""
    try:
        rc = app(args=list(args), prog_name=prog_name, standalone_mode=False)
    except typer.Exit as e:  # older click re-raises some exits in non-standalone mode
        return int(getattr(e, "exit_code", 0) or 0)
    except typer.Abort:  # click < 8.2 turns Ctrl-C into Abort
        return interrupted()
    except usage_error_types() as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # a group without a subcommand: its help, not an error
            text = getattr(e, "format_message", lambda: "")()  # typer's rich help has printed itself: ""
            if text:
                print(text)
            return 0
        return error(usage_message(e))
    if isinstance(rc, bool) or not isinstance(rc, int):
        return 0
    if rc == INTERRUPTED:  # typer >= 0.29 turns Ctrl-C into Exit(130) without a word
        interrupted()
    return rc


def unexpected(exc: BaseException) -> int:
    """Not a known user mistake (a bug, a damaged file): one line naming it and where the traceback went;
    exit code 1.

    ``SYNTHLOOP_TRACEBACK=1`` prints the traceback itself instead (for developers and bug reports).
    """
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if os.environ.get("SYNTHLOOP_TRACEBACK"):
        sys.stderr.write(text)
        return 1
    where = "(could not be saved)"
    try:
        fd, path = tempfile.mkstemp(prefix="synthloop-traceback-", suffix=".txt")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        where = path
    except OSError:
        pass
    first = " ".join(str(exc).split()) or "(no message)"
    say(f"error: {type(exc).__name__}: {first} (unexpected: full traceback in {where}; "
        "please report it if this is not a damaged file or a full disk)")
    return 1


def run_main(app: Any, args: list[str], user_errors: tuple[type[BaseException], ...]) -> int:
    """The whole of ``synthloop ARGS``: an exit code, and no traceback whatever happens.

    ``user_errors`` are the domain's exceptions for a user's mistake (unknown task, bad config value,
    missing extra): one line and exit code 2, like a usage error.
    """
    from synthloop.cli_help import print_help_extras

    try:
        rc = invoke(app, args, "synthloop")
        if rc == 0 and "--help" in args:
            print_help_extras(app, args)
        return rc
    except user_errors as e:
        return error(e)
    except ValueError as e:  # pydantic task-option errors and similar: their first lines carry the point
        return error(" ".join(x.strip() for x in str(e).splitlines()[:3]))
    except KeyboardInterrupt:
        return interrupted()
    except SystemExit as e:  # an argparse-based subcommand that exited by itself
        return e.code if isinstance(e.code, int) else (0 if e.code is None else error(e.code))
    except Exception as e:
        return unexpected(e)
