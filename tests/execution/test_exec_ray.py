"""The Ray executor against a local ray.init: the same sandbox on Ray workers."""

from __future__ import annotations

import asyncio
import time

import pytest
from exec_tasks import art, case

from synthloop.execution import make_executor
from synthloop.execution.base import Limits

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_executor():
    from exec_tasks import EchoTask, register

    register()
    ex = make_executor("ray", EchoTask(), "tests/exec_echo", {}, 2, None)
    ex.start()
    yield ex
    ex.close()


def test_ray_normal_job(ray_executor):
    outs = asyncio.run(ray_executor.run(art("print('hi')\nreturn case['id']"), [case(0), case(1)], Limits(wall_s=10)))
    assert [o.output for o in outs] == ["0", "1"], [o.error for o in outs]
    assert outs[0].stdout == "hi\n" and outs[0].isolation.get("mode")


def test_ray_timeout_and_recovery(ray_executor):
    t0 = time.perf_counter()
    [o] = asyncio.run(ray_executor.run(art("while True: pass"), [case()], Limits(wall_s=1.0)))
    assert o.error_kind == "timeout" and "process tree killed" in o.error, o
    assert time.perf_counter() - t0 < 1.0 + 2.0
    [o] = asyncio.run(ray_executor.run(art("return 3"), [case()], Limits(wall_s=10)))
    assert o.ok and o.output == 3


def test_ray_unknown_task_fails_in_driver():
    from synthloop.execution.ray_executor import RayExecutor
    from synthloop.tasks.registry import UnknownTask

    with pytest.raises(UnknownTask):
        RayExecutor("no/such-task", {}).start()
