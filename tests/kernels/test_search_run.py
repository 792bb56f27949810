"""The kernel search end to end: real OpenAI SDK against a scripted fake server, real sandboxed executor,
real compiler and timings (heat2d, CPU backend, two small sizes, one thread).

The scripted kernels are chosen so the timing verdicts are not close calls: FAST peels the boundary and
vectorises the interior (3-10x the seed here), SLOW walks the grid column-major three times (~0.3x).

Timings are measurements, so these tests keep them out of the *validity* of a kernel: the implausible-speed
check compares a kernel's time with the machine's ceilings, which are measured once (on first use, possibly
while the machine is loaded) and cached; a ceiling measured under load is low, and FAST, timed later on a
quieter machine, then lands above 1.10x it and is rejected as "implausible" (that check has its own tests in
test_kernels_fitness.py and test_kernels_redteam.py). Here it is switched off (``implausible_blocks``).
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from synthloop.config import build_config
from synthloop.runner import prepare_run
from synthloop.tasks.kernels.catalog import get_task
from synthloop.testing.fake_llm import FakeOpenAIServer

FAST = """#include <stddef.h>
#include <stdint.h>

void heat_step(const float* restrict u_in, float* restrict u_out, uint32_t NX, uint32_t NY, float alpha) {
    #pragma omp parallel for schedule(static)
    for (uint32_t j = 0; j < NY; ++j) {
        const float* r = u_in + (size_t)j * NX;
        float* o = u_out + (size_t)j * NX;
        if (j == 0 || j == NY - 1) {
            for (uint32_t i = 0; i < NX; ++i) o[i] = r[i];
            continue;
        }
        const float* up = r - NX;
        const float* dn = r + NX;
        o[0] = r[0];
        #pragma omp simd
        for (uint32_t i = 1; i < NX - 1; ++i) {
            float c = r[i];
            o[i] = c + alpha * (r[i - 1] + r[i + 1] + up[i] + dn[i] - 4.0f * c);
        }
        o[NX - 1] = r[NX - 1];
    }
}
"""

SLOW = """#include <stddef.h>
#include <stdint.h>

void heat_step(const float* u_in, float* u_out, uint32_t NX, uint32_t NY, float alpha) {
    for (int rep = 0; rep < 3; ++rep) {
        #pragma omp parallel for schedule(static)
        for (uint32_t i = 0; i < NX; ++i) {
            for (uint32_t j = 0; j < NY; ++j) {
                uint32_t k = j * NX + i;
                if (i == 0 || j == 0 || i == NX - 1 || j == NY - 1) {
                    u_out[k] = u_in[k];
                } else {
                    float c = u_in[k];
                    u_out[k] = c + alpha * (u_in[k - 1] + u_in[k + 1] + u_in[k - NX] + u_in[k + NX] - 4.0f * c);
                }
            }
        }
    }
}
"""

#: correct only on square grids (north/south stride NY instead of NX): the hmc-style held-out catch
SQUARE_ONLY = FAST.replace("r - NX;", "r - NY;").replace("r + NX;", "r + NY;")
WRONG = FAST.replace("- 4.0f * c", "- 3.0f * c")
STATIC_BAD = FAST.replace("o[0] = r[0];", "o[0] = r[0]; system(\"true\");")
BROKEN = FAST.replace("float c = r[i];", "float c = r[i]\n            int oops = undeclared_thing;")
SIZES = ["128^2x50", "256^2x50"]


def answer(src: str, why: str = "Peel the boundary and vectorise.") -> str:
    return f"{why}\n\n```c\n{src}```\n"


def run(tmp_path: Path, replies: list[str], strategy: str = "one_plus_one", iterations: int = 3,
        **search: Any) -> tuple[Path, dict[str, Any], FakeOpenAIServer]:
    with FakeOpenAIServer(replies) as srv:
        data = {
            "task": "kernels/heat2d",
            "task_options": {"backend": "cpu", "sizes": SIZES, "warmup": 1, "measure": 3, "threads": 1,
                             "duel_pairs": 6, "gate_pairs": 6, "timeout_s": 30, "implausible_blocks": False},
            "llm": {"model": "openai/fake", "base_url": srv.base_url, "backoff_base_s": 0.01, "max_attempts": 1},
            "search": {"strategy": strategy, "iterations": iterations, **search},
            "execution": {"workers": 1},
            "out": str(tmp_path / strategy),
        }
        run_dir = prepare_run(build_config(data), announce=lambda s: None)
        code = f"from pathlib import Path; from synthloop.runner import execute_run; execute_run(Path({str(run_dir)!r}))"
        _fresh([sys.executable, "-c", code])
    return run_dir, json.loads((run_dir / "report.json").read_text()), srv


def _fresh(cmd: list[str]) -> str:
    """Run in a fresh interpreter: the sandbox forks its zygote from the calling process, and earlier tests
    in this one may have started numba/OpenMP thread pools, which do not survive a fork (the child hangs)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-kernel-search")


def _meta(run_dir: Path, key: str) -> Any:
    con = sqlite3.connect(run_dir / "run.sqlite")
    row = con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    con.close()
    return json.loads(row[0]) if row else None


def _requests(run_dir: Path) -> list[str]:
    con = sqlite3.connect(run_dir / "run.sqlite")
    rows = [r[0] for r in con.execute("SELECT request FROM llm_calls ORDER BY id")]
    con.close()
    return rows


def _user(req: str, last: bool = False) -> str:
    msgs = [m for m in json.loads(req)["messages"] if m["role"] == "user"]
    return msgs[-1 if last else 0]["content"]


def test_one_plus_one_promotes_fast_rejects_wrong_and_slow_retries_invalid_answers(tmp_path: Path) -> None:
    replies = [answer(STATIC_BAD), answer(BROKEN), answer(FAST), answer(WRONG, "Cheaper arithmetic."),
               answer(SLOW, "Transpose.")]
    run_dir, s, _ = run(tmp_path, replies, iterations=3)
    cands = {c["generation"]: c for c in s["candidates"]}
    champion = _meta(run_dir, "champion")
    promotions = _meta(run_dir, "promotions")
    assert [p["generation"] for p in promotions] == [1], promotions  # only the fast kernel is promoted
    assert champion == cands[1]["id"] and promotions[0]["ci_low"] > 1.02
    assert cands[2]["score"] is None  # the wrong kernel scores nothing and is not promoted
    reqs = _requests(run_dir)
    assert len(reqs) == 5  # gen 1 three times (static-check rejection, compile error), gen 2, gen 3
    assert "static check rejected the kernel" in _user(reqs[1], last=True)
    retry = _user(reqs[2], last=True)
    assert "could not be used" in retry and "error:" in retry and "undeclared_thing" in retry
    assert "note:" not in retry and len(retry) < len(FAST) + 1500  # trimmed, not the whole log
    con = sqlite3.connect(run_dir / "run.sqlite")
    attempts = dict(con.execute("SELECT generation, attempts FROM candidates WHERE generation > 0"))
    con.close()
    assert attempts == {1: 3, 2: 1, 3: 1}  # the retried proposal records its three attempts
    system = json.loads(reqs[0])["messages"][0]["content"]
    assert "Host launch configuration" in system and "OMP_NUM_THREADS=1" in system
    assert "heat_step x50" in system
    third = _user(reqs[4])  # previous (wrong) attempt, the incumbent (fast) and the history with the duel
    assert "INCORRECT" in third and "Current best (incumbent" in third and "PROMOTED" in third
    assert "128^2x50: correct" in third
    held = [s_.label for s_ in get_task("heat2d").sizes("cpu", "held")]
    for req in reqs:  # held-out configurations never reach a prompt
        for label in held:
            assert label not in req
        # the held-out grid's edge as a number of its own (not a digit run inside a timing such as 0.1384 ms)
        assert not re.search(r"(?<![\d.])384(?![\d.])", req), re.search(r".{60}384.{20}", req)
        assert "heldout" not in req.lower().replace("held-out", "")
    gate = _meta(run_dir, "gate")
    assert gate["status"] in ("passed", "flagged") and gate["fingerprint_ok"] is True
    assert gate["heldout_fingerprint"] == _meta(run_dir, "heldout_fingerprint")
    row = next(r for r in gate["rows"] if r["candidate"] == champion)
    assert set(row) >= {"role", "candidate", "generation", "in_distribution", "heldout", "relative_drop",
                        "flagged", "heldout_error"}
    assert row["heldout_configs"][held[0]]["correct"] is True and row["heldout_error"] is None
    assert row["in_distribution_speedup"]["ci_low"] > 1.0 and row["heldout_speedup"]["point"] > 1.0
    # Not asserted: whether the gate flags this honest kernel. Its speedup differs by size (4.9x held-out
    # against 5.4x in-distribution on one loaded CI run), and today's gate calls a 20% lower geometric mean a
    # drop whatever the noise; a noise-aware verdict is issue 16's. The verdict must still state its evidence.
    assert row["flagged"] == bool(row["flag_reasons"])


def test_best_of_n_duels_only_its_best_child_and_refine_keeps_the_latest(tmp_path: Path) -> None:
    """best_of_n: both answers become children of the seed; the child with the best selection score, and only
    it, duels the seed, and the champion is what that stored duel decided. Which child measures faster, and
    whether its duel clears the noise, depend on the machine's load, so they are read back from the run, not
    assumed. refine: one child per generation, and the champion is the latest child, whatever its timing."""
    run(tmp_path, [answer(SLOW), answer(FAST)], strategy="best_of_n", iterations=2)
    run_dir = tmp_path / "best_of_n"
    con = sqlite3.connect(run_dir / "run.sqlite")
    rows = list(con.execute("SELECT id, generation, parent_id, content FROM candidates"))
    selection = dict(con.execute("SELECT candidate_id, score FROM evaluations WHERE pool='selection' AND valid=1"))
    duels = [(cid, json.loads(private)) for cid, private in
             con.execute("SELECT candidate_id, private FROM evaluations WHERE pool='duel'")]
    con.close()
    seed_id = next(i for i, gen, _, _ in rows if gen == 0)
    kids = {i: content for i, gen, parent, content in rows if gen == 1 and parent == seed_id}
    assert len(rows) == 3 and sorted("omp simd" in c for c in kids.values()) == [False, True]  # the two answers
    assert set(kids) <= set(selection), selection  # both kernels are correct, so both are scored
    assert len(duels) == 1, duels  # only the best child duels (the two proposals race: found by score)
    duelist, private = duels[0]
    assert duelist in kids and selection[duelist] == max(selection[k] for k in kids)
    assert private["incumbent"] == seed_id
    promoted = bool(private.get("decision", {}).get("promote"))
    assert _meta(run_dir, "champion") == (duelist if promoted else seed_id)
    assert [p["candidate"] for p in _meta(run_dir, "promotions")] == ([duelist] if promoted else [])
    assert _meta(run_dir, "gate")["status"] in ("passed", "flagged")

    refine_dir, s, _ = run(tmp_path, [answer(FAST)], strategy="refine", iterations=1)
    assert [c["generation"] for c in s["candidates"]] == [0, 1]
    latest = s["candidates"][1]
    assert latest["score"] is not None and _meta(refine_dir, "champion") == latest["id"]


def test_cli_run_flags_a_kernel_that_fails_the_heldout_shape(tmp_path: Path) -> None:
    with FakeOpenAIServer([answer(SQUARE_ONLY, "Vectorise; the grid is square anyway.")]) as srv:
        out = _fresh([sys.executable, "-m", "synthloop.cli", "run", "kernels/heat2d", "--backend", "cpu",
                      "--model", "openai/fake", "--base-url", srv.base_url, "--iterations", "1",
                      "--out", str(tmp_path / "cli"), "-q", "--json", "--sizes", "[128^2x50]", "--warmup", "1",
                      "--measure", "3", "--threads", "1", "--duel-pairs", "6", "--gate-pairs", "4",
                      "--set", "task_options.implausible_blocks=false"])
    summary = json.loads(out.strip().splitlines()[-1])
    gate = summary["gate"]
    champion = _meta(tmp_path / "cli", "champion")
    assert champion == summary["candidates"][1]["id"], "fast in-distribution: promoted"
    row = next(r for r in gate["rows"] if r["candidate"] == champion)
    assert gate["status"] == "flagged" and row["flagged"] and row["heldout"] is None
    assert row["heldout_error"] and any("held-out failure at 384x200x30" in x for x in row["flag_reasons"])
    assert gate["seed_heldout"]["384x200x30"]["correct"] is True
    assert row["in_distribution_speedup"]["point"] > 1.0
