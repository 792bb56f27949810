"""``synthloop autoresearch TASK ...``: argparse entry point (the lead wires it into the main CLI).

Example::

    synthloop autoresearch examples/circle_packing --researcher-model openai/gpt-4.1 \\
        --synthesizer-model openai/gpt-4.1-mini --budget-evals 30 --replicates 3

Exit status: 0 after a completed run (whatever the gate's verdict), 2 on a
configuration error (one line on stderr), 1 on an unexpected failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synthloop.autoresearch.harness import Budget, KeepRule
from synthloop.autoresearch.run import AutoresearchConfig, run_autoresearch


def _option(s: str) -> tuple[str, object]:
    import yaml

    if "=" not in s:
        raise argparse.ArgumentTypeError(f"--task-option expects key=value, got {s!r}")
    k, v = s.split("=", 1)
    return k.strip(), yaml.safe_load(v)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="synthloop autoresearch",
                                description="An outer-loop researcher redesigns the inner synthesis pipeline.")
    p.add_argument("task", help="inner task, e.g. examples/circle_packing (later ssd/cleanup)")
    p.add_argument("--objective", default=None,
                   help="metric of the inner Evaluation to maximise (score, or a metric name such as efficiency"
                        " or maximin); default: the task's objective")
    p.add_argument("--researcher-model", default=None, help="built-in researcher: any synthloop model string")
    p.add_argument("--researcher-base-url", default=None)
    p.add_argument("--researcher-cmd", default=None,
                   help="external researcher command template, e.g. 'claude -p {prompt}' (placeholders:"
                        " {prompt} {url} {workspace} {program})")
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
    p.add_argument("--max-turns", type=int, default=60, help="built-in researcher: tool calls at most")
    p.add_argument("--workers", type=int, default=None, help="sandbox workers for the inner task")
    p.add_argument("--out", type=Path, default=None, help="run directory")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cfg = AutoresearchConfig(
        task=args.task, objective=args.objective, task_options=dict(args.task_option),
        synthesizer_model=args.synthesizer_model, synthesizer_base_url=args.synthesizer_base_url,
        researcher_model=args.researcher_model, researcher_base_url=args.researcher_base_url,
        researcher_cmd=args.researcher_cmd, replicates=args.replicates,
        budget=Budget(evals=args.budget_evals, tokens=args.budget_tokens, usd=args.budget_usd,
                      wall_s=args.budget_wall_s),
        rule=KeepRule(min_delta=args.min_delta), pick=args.pick, max_turns=args.max_turns, workers=args.workers,
        out=args.out,
    )
    from synthloop.config import ConfigError
    from synthloop.llm.providers import ModelConfigError
    from synthloop.tasks.registry import UnknownTask

    try:
        res = run_autoresearch(cfg)
    except (ValueError, ConfigError, ModelConfigError, UnknownTask) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for p in res.reports:
        print(p)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
