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
    assert "synthloop   n=20 concurrency=1" in r.stderr and "20/20 LLM requests" in r.stderr  # progress on stderr
    (row,) = res["synthloop"]
    # every iteration made exactly one LLM call whose edit was applied and evaluated
    assert (row["iterations"], row["llm_requests"], row["candidates"], row["invalid"]) == (20, 20, 21, 0)
    assert row["steady_ms"] > 0 and row["llm_call_ms"] > 0
    # the LLM time subtracted is the SDK call alone (as for OpenEvolve): within what the run recorded per call
    assert row["llm_call_recorded_ms"] >= row["llm_call_ms"]
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


# The layout of OpenEvolve 0.4.0's diff prompt (prompts/defaults/diff_user.txt): a "# Current Program
# Information" header, then earlier programs, and only then the parent in the block after "# Current Program".
OPENEVOLVE_PROMPT = '''# Current Program Information
- Fitness: 0.7100
- Feature coordinates: complexity=5

# Program Evolution History
## Previous Attempts

### Attempt 1
```python
# EVOLVE-BLOCK-START
def value():
    x = 0.910000000  # tunable
    return x
# EVOLVE-BLOCK-END
```

# Current Program
```python
# EVOLVE-BLOCK-START
def value():
    x = 0.710000000  # tunable
    return x
# EVOLVE-BLOCK-END
```

# Task
Suggest improvements to the program that will improve its FITNESS SCORE.
'''


def _search_replace(answer: str) -> tuple[str, str]:
    search = answer.split("<<<<<<< SEARCH\n", 1)[1].split("\n=======\n", 1)[0]
    replace = answer.split("\n=======\n", 1)[1].split("\n>>>>>>> REPLACE", 1)[0]
    return search, replace


def test_fake_llm_edits_openevolves_parent_not_an_earlier_program():
    from synthloop.bench.engine import make_responder

    respond = make_responder(seed=7)
    answer = respond({"messages": [{"role": "system", "content": "You are an expert."},
                                   {"role": "user", "content": OPENEVOLVE_PROMPT}]})
    search, replace = _search_replace(answer)
    # the edit applies to the parent: before the fix it targeted Attempt 1's line and OpenEvolve rejected
    # 870 of 1000 iterations as "None of the SEARCH blocks matched", which made it look cheap
    assert search == "    x = 0.710000000  # tunable"
    assert replace.startswith("    x = ") and replace.endswith("  # tunable") and replace != search


def test_fake_llm_edits_our_parent_when_the_prompt_has_no_openevolve_block():
    from synthloop.bench.engine import make_responder

    respond = make_responder(seed=7)
    prompt = "Improve this program.\n```python\ndef value():\n    x = 0.250000000  # tunable\n    return x\n```\n"
    search, _ = _search_replace(respond({"messages": [{"role": "user", "content": prompt}]}))
    assert search == "    x = 0.250000000  # tunable"
    assert respond({"messages": [{"role": "user", "content": "no code here"}]}) == "no program found"


def test_openevolve_failed_iterations_are_counted_from_its_log(tmp_path):
    from synthloop.bench.engine import openevolve_failed_iterations

    (tmp_path / "openevolve_20261127_034747.log").write_text(
        "2026-11-27 03:47:48,122 - openevolve.process_parallel - WARNING - Iteration 6 error: None of the 1"
        " SEARCH block(s) matched the parent program | tokens: 685 (prompt: 655, completion: 30)\n"
        "2026-11-27 03:47:48,150 - openevolve.process_parallel - INFO - Iteration 7: Program abc (parent: def)"
        " completed in 0.01s\n"
        "2026-11-27 03:47:48,171 - openevolve.process_parallel - WARNING - Iteration 11 error: LLM timeout\n")
    assert openevolve_failed_iterations(tmp_path) == 2
    assert openevolve_failed_iterations(tmp_path / "missing") == 0


def test_each_benchmark_run_gets_a_fresh_interpreter():
    import os

    from synthloop.bench.engine import in_fresh_process

    # a run's sandbox is forked from the process it runs in: runs sharing one would inherit each other's heap
    first, second = in_fresh_process(os.getpid), in_fresh_process(os.getpid)
    assert len({os.getpid(), first, second}) == 3


def test_ratios_compare_our_concurrency_with_as_many_openevolve_workers_and_the_nearest_length():
    from synthloop.bench.engine import ratio_rows

    ours = [{"iterations": 100, "concurrency": 1, "overhead_ms": 2.0},
            {"iterations": 1000, "concurrency": 4, "overhead_ms": 4.0},
            {"iterations": 3000, "concurrency": 2, "overhead_ms": 5.0},
            {"iterations": 20, "concurrency": 1, "overhead_ms": -0.1}]
    theirs = [{"iterations": 100, "workers": 1, "overhead_ms": 6.0},
              {"iterations": 1000, "workers": 1, "overhead_ms": 30.0},
              {"iterations": 100, "workers": 4, "overhead_ms": 4.5},
              {"iterations": 1000, "workers": 4, "overhead_ms": 28.0}]
    rows = ratio_rows(ours, theirs)
    got = [(r["openevolve_iterations"], r["openevolve_workers"], r["openevolve_over_synthloop"]) for r in rows]
    # c=1 -> 1 worker; c=4 -> 4 workers; c=2 (none measured) -> the 1-worker default at the nearest length
    assert got == [(100, 1, 3.0), (1000, 4, 7.0), (1000, 1, 6.0), (100, 1, None)]
