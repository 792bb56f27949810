"""Shared helpers for the kernel-task tests (CPU backend, small sizes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from synthloop.tasks.kernels.evaluate import EvalConfig

REDTEAM = Path(__file__).with_name("redteam")


def _read(name: str) -> str:
    return (REDTEAM / name).read_text()


@pytest.fixture(scope="session")
def redteam() -> Callable[[str], str]:
    """Source of a red-team kernel under tests/kernels/redteam."""
    return _read


@pytest.fixture(scope="session")
def fast_cfg() -> EvalConfig:
    """Few repetitions, one thread (less scheduler noise on busy CI cores), all three check runs."""
    return EvalConfig(backend="cpu", warmup=0, measure=2, variants=2, timeout_s=60.0, threads=1)
