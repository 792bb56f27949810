"""An argparse parser that keeps the command line's error contract: one line on stderr, exit code 2.

Some subcommands (``bench engine|ssd|kernels``, ``table``) parse their own arguments with argparse.
Plain argparse prints its usage block and then ``prog: error: ...``; this one prints only
``error: ...`` naming the problem (argparse's message already lists the valid choices) and where the
full usage is. Standard library only: the kernel benchmark imports it on bare GPU hosts.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line; ``--help`` still exits 0 after the help."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message} (see `{self.prog} --help`)", file=sys.stderr, flush=True)
        raise SystemExit(2)
