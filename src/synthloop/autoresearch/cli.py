"""``synthloop autoresearch TASK ...`` and ``synthloop autoresearch resume RUN``: argparse entry points.

Example::

    synthloop autoresearch examples/circle_packing --researcher-model openai/gpt-4.1 \\
        --synthesizer-model openai/gpt-4.1-mini --budget-evals 30 --replicates 3
    synthloop autoresearch examples/circle_packing --synthesizer-model openai/gpt-4.1-mini \\
        --researcher-cmd 'claude -p {prompt} --permission-mode acceptEdits' --researcher-env ANTHROPIC_API_KEY
    synthloop autoresearch resume runs/20260101-120000-autoresearch-examples-circle_packing

Exit status: 0 after a completed run (whatever the gate's verdict) and after
``--help``, 2 on a configuration error (one line on stderr), 130 on Ctrl-C
(with the resume command), 1 on an unexpected failure.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from synthloop.autoresearch.harness import Budget, KeepRule
from synthloop.autoresearch.jail import MODES, NETWORKS, JailPolicy
from synthloop.autoresearch.run import (
    AutoresearchConfig,
    RunResult,
    load_config,
    resume_autoresearch,
    run_autoresearch,
)


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line naming the problem (and the valid choices), exit status 2, no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _option(s: str) -> tuple[str, object]:
    import yaml

    if "=" not in s:
        raise argparse.ArgumentTypeError(f"--task-option expects key=value, got {s!r}")
    k, v = s.split("=", 1)
    return k.strip(), yaml.safe_load(v)


def _researcher_options(p: argparse.ArgumentParser, resume: bool) -> None:
    """The researcher side: the only options a resume may change."""
    p.add_argument("--researcher-model", default=None, help="built-in researcher: any synthloop model string")
    p.add_argument("--researcher-base-url", default=None)
    p.add_argument("--researcher-cmd", default=None,
                   help="external researcher command template, e.g. 'claude -p {prompt}' (placeholders:"
                        " {prompt} {url} {workspace} {program})")
    p.add_argument("--researcher-jail", choices=MODES, default=None if resume else "auto",
                   help="confinement of an external researcher: auto (namespace, else bwrap, else an error),"
                        " namespace, bwrap, or none (unjailed; recorded in the run and its report)")
    p.add_argument("--researcher-network", choices=NETWORKS, default=None if resume else "host",
                   help="the jailed researcher's network: host (default; agents need their LLM API) or none (only"
                        " the evaluation service)")
    p.add_argument("--researcher-env", action="append", default=None, metavar="NAME",
                   help="pass this environment variable to the external researcher (e.g. its own API key);"
                        " nothing else of the environment is passed")
    p.add_argument("--researcher-bind", action="append", default=None, metavar="PATH",
                   help="show this path read-only in the jail (e.g. a CLI or its config under /tmp or the run dir's"
                        " parent)")
    p.add_argument("--researcher-hide", action="append", default=None, metavar="PATH",
                   help="hide this path in the jail too (the run directory always is)")
    p.add_argument("--max-turns", type=int, default=None if resume else 60,
                   help="built-in researcher: tool calls at most")
    p.add_argument("--workers", type=int, default=None, help="sandbox workers for the inner task")


def resume_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="synthloop autoresearch resume",
                description="Continue an interrupted autoresearch run where it stopped (ledger, spend and budget"
                            " kept; the experiment in flight is recorded as interrupted).")
    p.add_argument("run_dir", type=Path, help="the run directory")
    _researcher_options(p, resume=True)
    return p


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="synthloop autoresearch",
                description="An outer-loop researcher redesigns the inner synthesis pipeline."
                            " (`synthloop autoresearch resume RUN` continues an interrupted run.)")
    p.add_argument("task", help="inner task, e.g. examples/circle_packing (later ssd/cleanup)")
    p.add_argument("--objective", default=None,
                   help="metric of the inner Evaluation to maximise (score, or a metric name such as efficiency"
                        " or maximin); default: the task's objective")
    _researcher_options(p, resume=False)
    p.add_argument("--synthesizer-model", required=True, help="the frozen inner-loop model")
    p.add_argument("--synthesizer-base-url", default=None)
    p.add_argument("--task-option", action="append", type=_option, default=[], metavar="KEY=VALUE")
    p.add_argument("--budget-evals", type=int, default=30, help="measurements, the baseline included")
    p.add_argument("--budget-tokens", type=int, default=None, help="LLM tokens, researcher and synthesizer")
    p.add_argument("--budget-usd", type=float, default=None, help="dollars, researcher and synthesizer")
    p.add_argument("--budget-wall-s", type=float, default=None, help="wall-clock seconds for the search")
    p.add_argument("--replicates", type=int, default=3, help="independent inner-loop replicates per measurement")
    p.add_argument("--min-delta", type=float, default=0.0, help="smallest paired improvement that can be kept")
    p.add_argument("--pick", choices=("last", "best"), default="last",
                   help="which inner-loop policy a replicate reports")
    p.add_argument("--out", type=Path, default=None,
                   help="run directory (new; to continue an interrupted run: synthloop autoresearch resume DIR)")
    return p


def _jail(args: argparse.Namespace, base: JailPolicy | None = None) -> JailPolicy | None:
    given = {"mode": args.researcher_jail, "network": args.researcher_network,
             "env": None if args.researcher_env is None else tuple(args.researcher_env),
             "binds": None if args.researcher_bind is None else tuple(args.researcher_bind),
             "hide": None if args.researcher_hide is None else tuple(args.researcher_hide)}
    given = {k: v for k, v in given.items() if v is not None}
    if base is None:
        return JailPolicy(**given)
    return dataclasses.replace(base, **given) if given else None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from synthloop.config import ConfigError
    from synthloop.llm.providers import ModelConfigError
    from synthloop.tasks.registry import UnknownTask

    run_dir: Path | None = None
    try:
        if argv[:1] == ["resume"]:
            args = resume_parser().parse_args(argv[1:])
            run_dir = args.run_dir
            res = _resume(args)
        else:
            args = parser().parse_args(argv)
            run_dir = args.out
            res = _start(args)
    except SystemExit as e:  # argparse's --help (0); its errors go through _Parser.error instead
        return e.code if isinstance(e.code, int) else 0
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ValueError, ConfigError, ModelConfigError, UnknownTask) as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        where = run_dir if run_dir is not None else "RUN (its directory under runs/)"
        print(f"interrupted; resume with: synthloop autoresearch resume {where}", file=sys.stderr)
        return 130
    for p in res.reports:
        print(p)
    return 0


def _resume(args: argparse.Namespace) -> RunResult:
    base = load_config(args.run_dir).jail
    return resume_autoresearch(args.run_dir, researcher_model=args.researcher_model,
                               researcher_base_url=args.researcher_base_url, researcher_cmd=args.researcher_cmd,
                               jail=_jail(args, base), max_turns=args.max_turns, workers=args.workers)


def _start(args: argparse.Namespace) -> RunResult:
    cfg = AutoresearchConfig(
        task=args.task, objective=args.objective, task_options=dict(args.task_option),
        synthesizer_model=args.synthesizer_model, synthesizer_base_url=args.synthesizer_base_url,
        researcher_model=args.researcher_model, researcher_base_url=args.researcher_base_url,
        researcher_cmd=args.researcher_cmd, replicates=args.replicates,
        budget=Budget(evals=args.budget_evals, tokens=args.budget_tokens, usd=args.budget_usd,
                      wall_s=args.budget_wall_s),
        rule=KeepRule(min_delta=args.min_delta), pick=args.pick, max_turns=args.max_turns, workers=args.workers,
        out=args.out, jail=_jail(args) or JailPolicy(),
    )
    return run_autoresearch(cfg)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
