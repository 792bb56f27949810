"""`synthloop bench engine`: a real run against the fake server in its own process, figures printed as JSON."""

import json
import subprocess
import sys


def synthloop_cmd() -> list[str]:
    return [sys.executable, "-m", "synthloop.cli"]


def test_bench_engine_runs_every_iteration_sandboxed_and_accounts_cpu(cli_env, tmp_path):
    out = tmp_path / "bench.json"
    # --openevolve-bin "": never run OpenEvolve here, even where it is installed
    r = subprocess.run(synthloop_cmd() + ["bench", "engine", "--iterations", "20", "--concurrency", "1",
                                          "--openevolve-bin", "", "--out", str(out)],
                       capture_output=True, text=True, env=cli_env, cwd=tmp_path, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert json.loads(r.stdout) == res
    (row,) = res["synthloop"]
    # every iteration made exactly one LLM call whose edit was applied and evaluated
    assert (row["iterations"], row["llm_requests"], row["candidates"], row["invalid"]) == (20, 20, 21, 0)
    assert row["steady_ms"] > 0 and row["llm_call_ms"] > 0
    assert abs(row["overhead_ms"] - (row["steady_ms"] - row["llm_call_ms"])) < 0.01
    cpu = row["cpu_ms"]
    assert set(cpu) == {"engine", "sandbox", "llm_server"}
    # candidates ran in reaped child processes (the sandbox tree), not in the engine
    assert cpu["sandbox"] > 0 and cpu["engine"] > 0 and cpu["llm_server"] >= 0
    assert res["openevolve"] == []
    (ratio,) = res["ratios"]["rows"]
    assert "documented" in res["ratios"]["baseline"]
    assert ratio["synthloop_overhead_ms"] == row["overhead_ms"]
    if row["overhead_ms"] > 0:
        assert ratio["openevolve_over_synthloop"] == round(ratio["openevolve_overhead_ms"] / row["overhead_ms"], 2)
    else:  # 20 iterations: the overhead can be lost in the LLM time's noise; then no ratio, not a huge one
        assert ratio["openevolve_over_synthloop"] is None
