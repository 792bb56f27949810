"""``bench kernels`` logic (the lead wires it to ``synthloop bench kernels``)."""

from __future__ import annotations

import json

from synthloop.tasks.kernels.bench import main


def test_bench_cpu_prints_ceilings_rows_and_scores(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "b.json"
    rc = main(["--backend", "cpu", "--tasks", "saxpy", "heat2d", "--split", "held", "--warmup", "0",
               "--measure", "2", "--threads", "1", "--json-out", str(out)])
    captured = capsys.readouterr()
    text = captured.err  # the readable table streams to stderr; stdout carries the JSON document
    assert rc == 0
    assert json.loads(captured.out) == json.loads(out.read_text())
    assert "triad bandwidth" in text and "FMA-chain peak" in text
    assert "N=1000003" in text and "384x200x30" in text and "score" in text
    doc = json.loads(out.read_text())
    assert doc["tasks"]["saxpy"]["held"]["correct"] and doc["ceilings"]["levels"]


def test_bench_json_mode_and_task_errors_do_not_stop_others(capsys) -> None:  # type: ignore[no-untyped-def]
    rc = main(["--backend", "cpu", "--tasks", "nosuchtask", "saxpy", "--split", "held", "--warmup", "0",
               "--measure", "1", "--threads", "1", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert "unknown kernel task" in doc["tasks"]["nosuchtask"]["error"]
    assert doc["tasks"]["saxpy"]["held"]["correct"]
