"""End to end: a scripted researcher (fake OpenAI server, real SDK) drives the outer loop over a scripted
synthesizer on examples/constant; the harness keeps the edit that helps, discards and reverts the one that
does not, refuses tampering, answers 429 when the budget is spent, and the report is written."""

from __future__ import annotations

import json
import sqlite3

import pytest
from ar_scripted import tool

from synthloop.autoresearch.harness import Budget
from synthloop.autoresearch.pipeline import CONFIG_FILE, DEFAULT_PROMPT, PROMPT_FILE
from synthloop.autoresearch.run import AutoresearchConfig, run_autoresearch
from synthloop.testing.fake_llm import FakeOpenAIServer

BOLD = DEFAULT_PROMPT.replace("$brief\n", "$brief\n\nBE BOLD: aim for the maximum.\n")
TIMID = BOLD.replace("BE BOLD: aim for the maximum.", "be timid.")
PENALTY = 0.0123457  # held-out values become 0.x876543: easy to spot if they ever leak


def test_scripted_run_keeps_discards_refuses_and_reports(tmp_path, synth_server):
    script = [
        tool("list_files"),
        tool("read_file", path=PROMPT_FILE),
        tool("write_file", path="../../escape.py", content="import os"),  # traversal: refused
        tool("write_file", path="program.md", content="measure nothing"),  # frozen: refused
        tool("write_file", path=PROMPT_FILE, content=BOLD),
        tool("run_experiment", summary="tell the model to be bold", reason="it under-reaches"),
        tool("write_file", path=PROMPT_FILE, content=TIMID),
        tool("run_experiment", summary="tell the model to be timid", reason="control"),
        tool("ledger"),
        tool("run_experiment", summary="one more", reason="budget check"),
    ]
    with FakeOpenAIServer(script) as researcher:
        cfg = AutoresearchConfig(
            task="examples/constant", task_options={"heldout_penalty": PENALTY},
            synthesizer_model="openai/fake-synth", synthesizer_base_url=synth_server.base_url,
            researcher_model="openai/fake-researcher", researcher_base_url=researcher.base_url,
            replicates=2, budget=Budget(evals=3), backoff_base_s=0.01, workers=2, out=tmp_path / "ar",
            start_files={CONFIG_FILE: "iterations: 1\nretries: 0\n"},
        )
        res = run_autoresearch(cfg, announce=lambda s: None)
        researcher_bodies = json.dumps(researcher.bodies)

    run = res.run_dir
    db = sqlite3.connect(run / "autoresearch.sqlite")
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM experiments ORDER BY id")]
    assert [(r["kind"], r["decision"]) for r in rows] == [
        ("baseline", "baseline"), ("experiment", "keep"), ("experiment", "discard")]
    assert rows[0]["objective_mean"] == 0.3 and rows[1]["objective_mean"] == 0.9
    assert rows[2]["objective_mean"] == 0.2 and "does not beat" in rows[2]["decision_reason"]
    assert "BE BOLD" in rows[1]["diff"]

    # the kept edit is the workspace; the discarded one is gone completely
    ws_prompt = (run / "workspace" / PROMPT_FILE).read_text()
    assert ws_prompt == BOLD

    # 429 once the budget is spent; the run ended and its report exists
    assert "budget spent" in res.stop_reason
    assert any('"budget_spent": true' in r for r in res.responses)
    refusals = [dict(r) for r in db.execute("SELECT source, action, path, reason FROM refusals ORDER BY id")]
    assert refusals[0]["path"] == "../../escape.py" and "leaves the workspace" in refusals[0]["reason"]
    assert refusals[1]["path"] == "program.md" and "frozen" in refusals[1]["reason"]
    assert refusals[2]["action"] == "measure" and "evaluation budget spent" in refusals[2]["reason"]
    md = (run / "autoresearch_report.md").read_text()
    assert "| 1 | experiment | tell the model to be bold | 0.9 | [0.9, 0.9] | 0.9 / 0.9 | 0.6 [0.6, 0.6] |" in md
    assert "beats the start on held-out" in md and "BE BOLD" in md
    assert "researcher" in md and "synthesizer" in md

    # held-out results exist (gate) but never reached the researcher
    gate = res.gate
    assert gate["status"] == "beats"
    assert abs(gate["incumbent"]["mean"] - (0.9 - PENALTY)) < 1e-9
    seen = "\n".join(res.transcript + res.responses) + researcher_bodies
    for leak in ("876543", "8876543", "2876543"):
        assert leak not in seen
    assert "heldout" not in seen.replace("heldout_penalty", "")


def test_cli_main_runs_and_reports(tmp_path, synth_server, capsys):
    from synthloop.autoresearch.cli import main

    script = [tool("status"), tool("finish", reason="nothing to try")]
    with FakeOpenAIServer(script) as researcher:
        rc = main(["examples/constant", "--objective", "value", "--synthesizer-model", "openai/fake",
                   "--synthesizer-base-url", synth_server.base_url, "--researcher-model", "openai/fake-r",
                   "--researcher-base-url", researcher.base_url, "--budget-evals", "4", "--replicates", "2",
                   "--workers", "2", "--out", str(tmp_path / "cli")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "autoresearch_report.md" in out and "researcher finished: nothing to try" in out
    md = (tmp_path / "cli" / "autoresearch_report.md").read_text()
    assert "No edit was kept" in md


@pytest.mark.parametrize("argv, needle", [
    (["examples/constant", "--objective", "maximin", "--synthesizer-model", "mutate", "--researcher-model",
      "mutate"], "unknown objective 'maximin'; valid: score, value"),
    (["examples/constant", "--synthesizer-model", "mutate"], "exactly one researcher"),
    (["examples/constant", "--synthesizer-model", "mutate", "--researcher-model", "mutate", "--replicates", "1"],
     "replicates must be at least 2"),
])
def test_cli_configuration_errors_are_one_line_exit_2(tmp_path, capsys, argv, needle):
    from synthloop.autoresearch.cli import main

    assert main([*argv, "--out", str(tmp_path / "x")]) == 2
    assert needle in capsys.readouterr().err
