"""The evaluation service and harness: budget (429), frozen hashes (409), sandboxed feedback builder,
sealed pools, and an external researcher that reaches scores only over HTTP (circle packing)."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from ar_scripted import agent_script, jail_for, program

from synthloop.autoresearch.harness import Budget, Harness
from synthloop.autoresearch.measure import InnerSetup
from synthloop.autoresearch.pipeline import CONFIG_FILE, DEFAULT_PROMPT, FEEDBACK_FILE, PROMPT_FILE
from synthloop.autoresearch.researcher import http_json
from synthloop.autoresearch.run import AutoresearchConfig, run_autoresearch
from synthloop.autoresearch.service import EvalService
from synthloop.tasks.examples.circle_packing import SEED
from synthloop.tasks.registry import make_task
from synthloop.testing.fake_llm import FakeOpenAIServer

FAST = {CONFIG_FILE: "iterations: 1\nretries: 0\n"}


@pytest.fixture
def service(tmp_path, synth_server, request):
    marker = request.node.get_closest_marker("harness")
    kw = dict(marker.kwargs) if marker else {}
    task = make_task("examples/constant", {"heldout_penalty": 0.0123457})
    setup = InnerSetup(task=task, task_name="examples/constant", task_options={"heldout_penalty": 0.0123457},
                       objective="value", synth_model="openai/fake", synth_base_url=synth_server.base_url,
                       backoff_base_s=0.01)
    h = Harness(tmp_path / "ar", setup, replicates=2, workers=2, start_files=FAST, **kw)
    svc = EvalService(h)
    try:
        h.open_workspace()
        svc.serve()
        yield h, svc
    finally:
        svc.stop()
        h.close()


def post(svc, path, **body):
    return http_json("POST", svc.url + path, body)


@pytest.mark.harness(budget=Budget(evals=2))
def test_budget_spent_answers_429_and_is_recorded(service):
    h, svc = service
    code, body = post(svc, "/experiments", summary="re-measure the start", reason="variance probe")
    assert code == 200 and body["decision"] == "discard" and body["result"]["mean"] == 0.3
    code, body = post(svc, "/experiments", summary="again", reason="")
    assert code == 429 and body["budget_spent"] is True
    assert http_json("GET", svc.url + "/status")[1]["spent"].startswith("evaluation budget spent")
    assert h.ledger.refusals()[-1]["reason"] == "evaluation budget spent: 2 of 2"


def test_tampered_measurement_is_refused_and_recorded(tmp_path, synth_server):
    frozen = tmp_path / "measure_helper.py"
    frozen.write_text("SCALE = 1.0\n")
    task = make_task("examples/constant")
    setup = InnerSetup(task=task, task_name="examples/constant", task_options={}, objective="value",
                       synth_model="openai/fake", synth_base_url=synth_server.base_url, backoff_base_s=0.01)
    h = Harness(tmp_path / "ar", setup, replicates=2, workers=2, start_files=FAST, extra_frozen=[frozen])
    svc = EvalService(h)
    try:
        h.open_workspace()
        svc.serve()
        frozen.write_text("SCALE = 100.0  # make every score look great\n")
        code, body = post(svc, "/experiments", summary="nothing", reason="")
        assert code == 409 and "frozen measurement path changed" in body["error"]
        assert str(frozen) in body["error"]
        frozen.write_text("SCALE = 1.0\n")
        code, body = post(svc, "/experiments", summary="nothing", reason="")
        assert code == 200
        ref = h.ledger.refusals()
        assert [(r["action"], r["path"], r["reason"]) for r in ref] == [
            ("measure", str(frozen), "frozen file changed; measurement refused")]
    finally:
        svc.stop()
        h.close()


def test_feedback_builder_runs_in_the_sandbox_on_feedback_data_only(service, synth_server):
    h, svc = service
    builder = textwrap.dedent('''
        import json, os
        def build_feedback(ctx):
            return ("PID=%d KEY=%s CTX=" % (os.getpid(), os.environ.get("OPENAI_API_KEY", "none"))) + json.dumps(ctx)
    ''')
    (h.ws.root / FEEDBACK_FILE).write_text(builder)
    synth_server.clear()
    code, body = post(svc, "/experiments", summary="dump the context", reason="see what the builder gets")
    assert code == 200, body
    users = [next(m["content"] for m in b["messages"] if m["role"] == "user") for b in synth_server.bodies]
    assert users and all(u.startswith("PID=") for u in users)
    import os

    assert all(f"PID={os.getpid()} " not in u for u in users)  # another process
    assert all("KEY=none" in u for u in users)  # with no credentials
    ctx = json.loads(users[-1].split("CTX=", 1)[1])
    assert ctx["parent"]["evaluation"]["score"] == 0.1 and "private" not in json.dumps(ctx)
    assert "selection" not in json.dumps(ctx) and "heldout" not in json.dumps(ctx)


def test_broken_builder_fails_the_experiment_and_is_reverted(service):
    h, svc = service
    (h.ws.root / FEEDBACK_FILE).write_text("def build_feedback(ctx):\n    raise RuntimeError('boom')\n")
    code, body = post(svc, "/experiments", summary="broken builder", reason="")
    assert code == 200 and body["n_failed"] == 2 and body["decision"] == "discard"
    assert any("boom" in e for e in body["errors"])
    assert "raise RuntimeError" not in (h.ws.root / FEEDBACK_FILE).read_text()


def test_bad_config_is_refused_without_spending_budget(service):
    h, svc = service
    (h.ws.root / CONFIG_FILE).write_text("iterations: 2\nthinking_budget: 32000\n")
    code, body = post(svc, "/experiments", summary="more thinking", reason="")
    assert code == 422 and "thinking_budget: unknown field" in body["error"]
    assert http_json("GET", svc.url + "/status")[1]["experiments"] == 1  # the baseline only
    assert "thinking_budget" in (h.ws.root / CONFIG_FILE).read_text()  # the researcher can fix it


BOLD_CIRCLES = SEED.replace("shrink = 0.90", "shrink = 0.99")

EXTERNAL = textwrap.dedent('''
    import json, os, pathlib, sys, urllib.request
    url = sys.argv[1]
    def call(method, path, body=None):
        headers = {"Content-Type": "application/json",
                   "Authorization": "Bearer " + os.environ["SYNTHLOOP_SERVICE_TOKEN"]}
        req = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(),
                                     method=method, headers=headers)
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
    p = pathlib.Path("pipeline/system_prompt.md")
    p.write_text(p.read_text().replace("$brief", "$brief\\n\\nBE BOLD."))
    print(call("POST", "/experiments", {"summary": "bold", "reason": "bigger radii"}))
    pathlib.Path("notes.txt").write_text("scratch")
    pathlib.Path("pipeline/system_prompt.md").write_text("half-done edit $brief")
    print(call("POST", "/discard", {"reason": "changed my mind"}))
    print(call("GET", "/ledger"))
''')


def test_external_researcher_on_circle_packing(tmp_path):
    def responder(req):
        system = next(m["content"] for m in req["messages"] if m["role"] == "system")
        return f"```python\n{BOLD_CIRCLES if 'BE BOLD' in system else SEED}```"

    script = agent_script(tmp_path, "agent.py", EXTERNAL)
    with FakeOpenAIServer(responder) as srv:
        cfg = AutoresearchConfig(
            task="examples/circle_packing", synthesizer_model="openai/fake", synthesizer_base_url=srv.base_url,
            researcher_cmd=f"{sys.executable} {script} {{url}}", replicates=2, budget=Budget(evals=5),
            backoff_base_s=0.01, workers=4, out=tmp_path / "ar", start_files=FAST, jail=jail_for(script))
        res = run_autoresearch(cfg, announce=lambda s: None)
    rows = json.loads((res.run_dir / "autoresearch_report.json").read_text())["experiments"]
    assert [(r["kind"], r["decision"]) for r in rows] == [
        ("baseline", "baseline"), ("experiment", "keep"), ("abandon", "abandoned")]
    assert rows[1]["objective_mean"] > rows[0]["objective_mean"]
    ws = res.run_dir / "workspace"
    assert not (ws / "notes.txt").exists()
    assert "BE BOLD." in (ws / PROMPT_FILE).read_text() and "half-done" not in (ws / PROMPT_FILE).read_text()
    assert res.gate["status"] == "beats"
    log = (res.run_dir / "researcher.log").read_text()
    assert "'decision': 'keep'" in log and "values_json" not in log
    assert DEFAULT_PROMPT.splitlines()[0] == "$brief"


STUBBORN = textwrap.dedent('''
    import json, os, sys, time, urllib.request
    req = urllib.request.Request(sys.argv[1] + "/experiments", data=json.dumps({"summary": "probe"}).encode(),
                                 method="POST", headers={"Content-Type": "application/json",
                                 "Authorization": "Bearer " + os.environ["SYNTHLOOP_SERVICE_TOKEN"]})
    print(urllib.request.urlopen(req).status, flush=True)
    time.sleep(600)  # ignores that the budget is spent
''')


def test_external_researcher_that_ignores_a_spent_budget_is_stopped(tmp_path, synth_server):
    script = agent_script(tmp_path, "stubborn.py", STUBBORN)
    cfg = AutoresearchConfig(
        task="examples/constant", synthesizer_model="openai/fake", synthesizer_base_url=synth_server.base_url,
        researcher_cmd=f"{sys.executable} {script} {{url}}", replicates=2, budget=Budget(evals=2),
        backoff_base_s=0.01, workers=2, out=tmp_path / "ar", start_files=FAST, external_grace_s=0.5,
        jail=jail_for(script))
    res = run_autoresearch(cfg, announce=lambda s: None)
    assert "after the budget was spent" in res.stop_reason
    assert (res.run_dir / "autoresearch_report.md").exists()


def test_builtin_researcher_context_is_trimmed_but_keeps_the_rules():
    from synthloop.autoresearch.researcher import BuiltinResearcher

    r = BuiltinResearcher.__new__(BuiltinResearcher)
    r.keep_turns = 2
    msgs = [{"role": "system", "content": "rules"}, {"role": "user", "content": "begin"}]
    for i in range(10):
        msgs += [{"role": "assistant", "content": f"a{i}"}, {"role": "user", "content": f"u{i}"}]
    msgs.append({"role": "assistant", "content": "a10"})
    out = r._trim(msgs)
    assert out[0]["content"] == "rules" and out[1]["content"] == "begin"
    assert out[-1]["content"] == "a10" and len(out) <= 4 + 4
    roles = [m["role"] for m in out[1:]]
    assert all(a != b for a, b in zip(roles, roles[1:]))  # strict alternation


@pytest.mark.parametrize("pick, objective, expected", [("last", "value", 0.2), ("best", "value", 0.9),
                                                        ("best", "score", 0.9)])
def test_pick_rule_and_objective_lookup(tmp_path, pick, objective, expected):
    from synthloop.autoresearch.measure import Measurer
    from synthloop.autoresearch.pipeline import DEFAULT_FILES, FeedbackBuilderTask, Pipeline
    from synthloop.execution import make_executor

    def responder(req):  # 0.1 (seed) -> 0.9 -> 0.2: the last iteration regresses
        user = next(m["content"] for m in req["messages"] if m["role"] == "user")
        return program(0.2 if "x = 0.9" in user else 0.9)

    task = make_task("examples/constant")
    ex = make_executor("local", task, "examples/constant", {}, 2)
    bx = make_executor("local", FeedbackBuilderTask(), FeedbackBuilderTask.name, {}, 1)
    ex.start()
    bx.start()
    try:
        with FakeOpenAIServer(responder) as srv:
            setup = InnerSetup(task=task, task_name="examples/constant", task_options={}, objective=objective,
                               synth_model="openai/fake", synth_base_url=srv.base_url, pick=pick,
                               backoff_base_s=0.01)
            pipe = Pipeline.from_files({**DEFAULT_FILES, CONFIG_FILE: "iterations: 2\n"}, task)
            m = Measurer(setup, ex, bx, tmp_path).measure(pipe, "m", 2)
    finally:
        ex.close()
        bx.close()
    assert m.values == [expected, expected]
    assert [(r.last, r.best) for r in m.replicates] == [(0.2, 0.9), (0.2, 0.9)]
