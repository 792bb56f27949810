"""Executor lifecycle: close() and engine death leave no process behind; degraded modes work."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from exec_tasks import EchoTask, art, case, descendants, wait_gone

from synthloop.execution import make_executor
from synthloop.execution.base import Limits
from synthloop.execution.local import LocalExecutor

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="Linux only")


def test_close_kills_running_jobs_and_leaves_nothing():
    ex = LocalExecutor(EchoTask(), workers=2)
    ex.start()
    zygote = ex.zygote_pid

    async def go() -> None:
        task = asyncio.ensure_future(ex.run(art("while True: pass"), [case(0), case(1)], Limits(wall_s=30)))
        await asyncio.sleep(0.5)
        procs = descendants(zygote)
        assert len(procs) >= 4  # 2 supervisors + their candidates
        t0 = time.perf_counter()
        ex.close()
        assert time.perf_counter() - t0 < 2.0
        assert not wait_gone([zygote, *procs], 1.0)
        outs = await task
        assert all(o.error_kind == "sandbox" for o in outs)

    asyncio.run(go())


def test_engine_sigkill_leaves_no_orphans(tmp_path):
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from exec_tasks import EchoTask
        from synthloop.core.types import Artifact, Case
        from synthloop.execution.base import Limits
        from synthloop.execution.local import LocalExecutor
        ex = LocalExecutor(EchoTask(), workers=2)
        ex.start()
        print(ex.zygote_pid, flush=True)
        code = "def main():\\n    import os\\n    os.fork()\\n    while True: pass\\n"
        asyncio.run(ex.run(Artifact(code), [Case("0", "feedback"), Case("1", "feedback")], Limits(wall_s=60)))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    zygote = int(proc.stdout.readline())
    time.sleep(0.8)
    procs = descendants(zygote)
    assert len(procs) >= 6  # 2 supervisors, 2 candidates, 2 forked children
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    t0 = time.perf_counter()
    alive = wait_gone([zygote, *procs], 2.0)
    assert not alive, f"survived the engine's SIGKILL: {alive}"
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize("mode", ["basic", "userns"])
def test_degraded_modes(mode):
    ex = LocalExecutor(EchoTask(), workers=2, isolation=mode)
    try:
        ex.start()
    except OSError as e:  # pragma: no cover - kernel without user namespaces
        pytest.skip(f"{mode}: {e}")
    try:
        async def go():
            ok = await ex.run(art("return 7"), [case()], Limits(wall_s=5))
            hang = await ex.run(art("import os\nif os.fork() == 0:\n    os.setsid()\nwhile True: pass"),
                                [case()], Limits(wall_s=1))
            again = await ex.run(art("return 8"), [case()], Limits(wall_s=5))
            return ok[0], hang[0], again[0]

        t0 = time.perf_counter()
        ok, hang, again = asyncio.run(go())
        assert ok.ok and ok.output == 7 and ok.isolation["mode"] == mode, ok
        assert hang.error_kind == "timeout" and again.ok and again.output == 8
        assert time.perf_counter() - t0 < 1 + 1 + 2
        if mode == "basic":
            assert not ok.isolation["netns"]
        assert not _cpu_burners(descendants(ex.zygote_pid)), "the setsid child of the hung job survived"
    finally:
        ex.close()


def _cpu_burners(pids: list[int], window: float = 0.5) -> list[int]:
    """Processes that used more than half a CPU during ``window`` seconds."""
    def cpu(p: int) -> float:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return 0.0

    before = {p: cpu(p) for p in pids}
    time.sleep(window)
    return [p for p in pids if cpu(p) - before[p] > window / 2]


def test_make_executor_names():
    task = EchoTask()
    assert isinstance(make_executor("local", task, "tests/exec_echo", {}, 2, None), LocalExecutor)
    with pytest.raises(ValueError, match="valid executors: local, ray"):
        make_executor("docker", task, "tests/exec_echo", {}, None, None)


def test_run_before_start_is_an_error():
    ex = LocalExecutor(EchoTask(), workers=1)
    with pytest.raises(RuntimeError, match="before start"):
        asyncio.run(ex.run(art("return 1"), [case()], Limits()))
    ex.close()  # closing a never-started executor is fine


def test_env_secret_in_exec_environment_not_visible(tmp_path):
    """The key is in the engine's *exec-time* environment block (what /proc/PID/environ shows)."""
    script = textwrap.dedent(f"""
        import asyncio, json, os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from exec_tasks import EchoTask
        from synthloop.core.types import Artifact, Case
        from synthloop.execution.base import Limits
        from synthloop.execution.local import LocalExecutor
        ex = LocalExecutor(EchoTask(), workers=1)
        ex.start()
        code = '''def main():
            import os, ctypes
            out = [repr(dict(os.environ)), repr(os.environb)]
            for p in ('/proc/self/environ', '/proc/1/environ', '/proc/%d/environ' % {{ppid}}):
                try:
                    out.append(open(p, 'rb').read().decode('latin-1'))
                except OSError as e:
                    out.append(type(e).__name__)
            return out'''.replace('{{ppid}}', str(os.getpid()))
        [o] = asyncio.run(ex.run(Artifact(code), [Case("0", "feedback")], Limits(wall_s=5)))
        ex.close()
        print(json.dumps(o.to_dict()))
    """)
    env = dict(os.environ, OPENAI_API_KEY="sk-exec-time-secret", ANTHROPIC_API_KEY="sk-ant-secret")
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = res.stdout.strip().splitlines()[-1]
    assert '"ok": true' in out
    assert "sk-exec-time-secret" not in out and "sk-ant-secret" not in out


def test_backstop_kills_a_silent_supervisor():
    """If a supervisor never answers (here: SIGSTOPped), the engine reports 'sandbox' and recovers."""
    ex = LocalExecutor(EchoTask(), workers=1)
    ex.backstop_s = 1.0
    ex.start()
    try:
        async def go():
            job = asyncio.ensure_future(ex.run(art("import time\ntime.sleep(60)"), [case()], Limits(wall_s=1.0)))
            await asyncio.sleep(0.4)
            procs = descendants(ex.zygote_pid)
            supervisors = [p for p in procs if _ppid(p) == ex.zygote_pid]
            for p in supervisors:
                os.kill(p, signal.SIGSTOP)
            t0 = time.perf_counter()
            [o] = await job
            assert o.error_kind == "sandbox" and "no result from the sandbox" in o.error, o
            assert time.perf_counter() - t0 < 2.0
            assert not wait_gone(procs, 2.0)
            [again] = await ex.run(art("return 9"), [case()], Limits(wall_s=5))
            assert again.ok and again.output == 9, again

        asyncio.run(go())
    finally:
        ex.close()


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def test_jobs_do_not_pass_through_the_zygote():
    """The engine writes each job to a prepared candidate and reads the outcome from its supervisor directly."""
    ex = LocalExecutor(EchoTask(), workers=2)
    ex.start()
    try:
        async def go():
            assert (await ex.run(art("return 1"), [case()], Limits(wall_s=5)))[0].ok  # channels are handed over
            os.kill(ex.zygote_pid, signal.SIGSTOP)
            try:
                outs = await ex.run(art("return 40 + 2"), [case(i) for i in range(6)], Limits(wall_s=5))
            finally:
                os.kill(ex.zygote_pid, signal.SIGCONT)
            assert [o.output for o in outs] == [42] * 6, outs

        asyncio.run(go())
    finally:
        ex.close()


def test_a_supervisor_killed_mid_job_fails_that_job_with_its_wait_status_and_is_replaced():
    ex = LocalExecutor(EchoTask(), workers=1)
    ex.start()
    try:
        async def go():
            job = asyncio.ensure_future(ex.run(art("import time\ntime.sleep(30)"), [case()], Limits(wall_s=30)))
            await asyncio.sleep(0.5)
            [sup] = [p for p in descendants(ex.zygote_pid) if _ppid(p) == ex.zygote_pid]
            t0 = time.perf_counter()
            os.kill(sup, signal.SIGKILL)
            [o] = await job
            assert time.perf_counter() - t0 < 2.0
            assert o.error_kind == "sandbox" and "supervisor died (wait status 9)" in o.error, o
            [again] = await ex.run(art("return 7"), [case()], Limits(wall_s=5))
            assert again.ok and again.output == 7, again

        asyncio.run(go())
    finally:
        ex.close()


def test_executor_survives_a_second_event_loop():
    """asyncio.run twice (as the CLI's phases do): channels move to the new loop, nothing is lost."""
    ex = LocalExecutor(EchoTask(), workers=2)
    ex.start()
    try:
        for want in (3, 4):
            outs = asyncio.run(ex.run(art(f"return {want}"), [case(0), case(1), case(2)], Limits(wall_s=5)))
            assert [o.output for o in outs] == [want] * 3, outs
    finally:
        ex.close()


def test_a_candidate_is_killed_once_its_outcome_is_sent():
    """A candidate waits for its supervisor's SIGKILL after sending its result (its exit then costs nothing on
    the hand-off): none may be left waiting. Its threads die with it."""
    ex = LocalExecutor(EchoTask(), workers=1)
    ex.start()
    try:
        body = ("import threading, time\n"
                "threading.Thread(target=lambda: time.sleep(60), daemon=False).start()\n"
                "return 5")
        ran: set[int] = set()
        for i in range(5):
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:  # the supervisor's prepared candidate: the one that runs job i
                prepared = [p for p in descendants(ex.zygote_pid) if _ppid(p) != ex.zygote_pid and p not in ran]
                if prepared:
                    break
                time.sleep(0.01)
            assert len(prepared) == 1, prepared
            ran.update(prepared)
            [o] = asyncio.run(ex.run(art(body), [case(i)], Limits(wall_s=5)))
            assert o.ok and o.output == 5, o
        assert len(ran) == 5
        assert not wait_gone(sorted(ran), 3.0), "a candidate outlived its job"
    finally:
        ex.close()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def test_sandbox_processes_are_named_by_role():
    """ps, top and perf tell the zygote, its supervisors and their prepared candidates apart."""
    ex = LocalExecutor(EchoTask(), workers=2)
    ex.start()
    try:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and len(descendants(ex.zygote_pid)) < 4:
            time.sleep(0.01)
        names = {p: _comm(p) for p in descendants(ex.zygote_pid)}
        sups = [p for p in names if _ppid(p) == ex.zygote_pid]
        assert _comm(ex.zygote_pid) == "sl-zygote"
        assert len(sups) == 2 and all(names[p] == "sl-supervisor" for p in sups), names
        cands = [p for p in names if p not in sups]
        assert len(cands) == 2 and all(names[p] == "sl-candidate" for p in cands), names
        [o] = asyncio.run(ex.run(art("import pathlib\nreturn pathlib.Path('/proc/self/comm').read_text()"),
                                 [case(0)], Limits(wall_s=5)))
        assert o.ok and o.output == "sl-candidate\n", o
    finally:
        ex.close()
