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


def test_job_outcomes_go_to_a_memory_backed_tmpfs_only_when_it_is_one_with_room(tmp_path, monkeypatch):
    from synthloop.execution import local

    shm = tmp_path / "shm"
    shm.mkdir()
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\ntmpfs {shm} tmpfs rw,nosuid,nodev 0 0\n")
    assert local.job_dir_base(str(shm), str(mounts)) == str(shm)
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\n/dev/vdb {shm} ext4 rw 0 0\n")  # a disk: the temp directory
    assert local.job_dir_base(str(shm), str(mounts)) is None
    mounts.write_text(f"tmpfs {tmp_path / 'gone'} tmpfs rw 0 0\n")
    assert local.job_dir_base(str(tmp_path / "gone"), str(mounts)) is None
    mounts.write_text(f"tmpfs {shm} tmpfs rw 0 0\n")
    monkeypatch.setattr(local, "SHM_MIN_FREE", 1 << 62)  # a tmpfs too small for the outcomes
    assert local.job_dir_base(str(shm), str(mounts)) is None


def test_job_root_is_removed_at_close_and_a_dead_engines_at_start():
    import tempfile

    from synthloop.execution.local import job_dir_base

    base = Path(job_dir_base() or tempfile.gettempdir())
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = base / f"synthloop-jobs-{int(gone.stdout)}-x1y2"  # its engine no longer exists
    stale.mkdir()
    (stale / "7.out").write_text("{}")
    ex = LocalExecutor(EchoTask(), workers=1)
    ex.start()
    try:
        assert not stale.exists()
        root = Path(ex._jobroot)
        assert root.parent == base and root.is_dir()
        (out,) = asyncio.run(ex.run(art("return 41 + 1"), [case()], Limits(wall_s=5)))
        assert out.ok and out.output == 42
        assert list(root.iterdir()) == []  # each outcome is deleted once read
    finally:
        ex.close()
    assert not root.exists()
