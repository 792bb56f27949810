"""The external researcher's jail, with real processes: what a jailed agent can and cannot see, write, reach and
know, and that its whole process tree dies with the budget. Skipped only where the machine grants no jail."""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ar_scripted import agent_script, jail_for

from synthloop.autoresearch import jail as jail_mod
from synthloop.autoresearch.harness import Budget
from synthloop.autoresearch.jail import JailPolicy, ResearcherJail, probe
from synthloop.autoresearch.pipeline import CONFIG_FILE
from synthloop.autoresearch.run import AutoresearchConfig, run_autoresearch

FAST = {CONFIG_FILE: "iterations: 1\nretries: 0\n"}


def need(mode: str, network: str = "host", userns: bool | None = None) -> None:
    why = probe(mode, network, userns)
    if why:
        print(f"skipped: no {mode} jail here: {why}")
        pytest.skip(f"no {mode} jail on this machine: {why}")


def sleepers(marker: str) -> list[int]:
    """Host PIDs of `sleep <marker>` processes (the marker is unique per test)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if f.read().split(b"\0")[:2] == [b"sleep", marker.encode()]:
                        out.append(int(name))
            except OSError:
                pass
    return out


# ------------------------------------------------------------------ the jail alone (fast, every variant)
PROBE_SH = """
cat "$RUN/inner/run.sqlite" 2>/dev/null && echo LEAK-inner || echo no-inner
ls "$RUN"
echo edited >> pipeline.txt && echo ws-write-ok
echo x > "$RUN/planted" 2>/dev/null && echo LEAK-run-write || echo no-run-write
echo x > "$OUTSIDE/planted" 2>/dev/null && echo LEAK-outside-write || echo no-outside-write
echo x > /tmp/scratch && echo tmp-write-ok
echo x > /dev/shm/scratch && echo shm-write-ok
echo x > /dev/null && echo devnull-write-ok
echo x > /dev/planted 2>/dev/null && echo LEAK-dev-write || echo no-dev-write
grep -q . /proc/$HARNESS/environ 2>/dev/null && echo LEAK-harness-environ || echo no-harness-environ
grep CapEff /proc/self/status
test -e /dev/vda -o -e /dev/sda && echo LEAK-disk || echo no-disk
"$PY" -c "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])" "$SOCK" 2>/dev/null \
  && echo LEAK-unix-socket || echo no-unix-socket
echo "home=$HOME key=${OPENAI_API_KEY:-unset}"
"""


@pytest.mark.parametrize("variant", ["namespace", "namespace-userns", "bwrap"])
def test_jail_view_of_the_filesystem(tmp_path, variant):
    mode, userns = variant.split("-")[0], True if variant.endswith("userns") else None
    need(mode, userns=userns)
    run, outside = tmp_path / "run", Path(sys.prefix)  # outside: an existing directory not under /tmp
    (run / "workspace").mkdir(parents=True)
    (run / "inner").mkdir()
    (run / "inner" / "run.sqlite").write_text("sealed")
    (run / "workspace" / "pipeline.txt").write_text("v1\n")
    # a host service's unix socket (as a container runtime's would be): read-only mounts do not stop connect()
    sock_path = f"/run/synthloop-jail-test-{os.getpid()}-{variant}.sock" if os.access("/run", os.W_OK) else ""
    server = socket.socket(socket.AF_UNIX)
    if sock_path:
        server.bind(sock_path)
        server.listen(1)
    j = ResearcherJail(JailPolicy(mode=mode), mode, run, run / "workspace", userns=userns)
    env = {**j.environment("http://127.0.0.1:9", "t"), "RUN": str(run), "OUTSIDE": str(outside),
           "HARNESS": str(os.getpid()), "PY": sys.executable, "SOCK": sock_path or "/nonexistent.sock"}
    planted = outside / "planted"
    try:
        with open(tmp_path / "log", "wb") as log:
            proc = j.start(["sh", "-c", PROBE_SH], env, log)
            assert proc.wait(30) == 0
    finally:
        leaked = planted.exists()
        planted.unlink(missing_ok=True)
        server.close()
        if sock_path:
            os.unlink(sock_path)
    out = (tmp_path / "log").read_text()
    print(out)
    assert not leaked and "LEAK" not in out
    assert "ws-write-ok" in out and "tmp-write-ok" in out and "shm-write-ok" in out and "devnull-write-ok" in out
    assert "CapEff:\t0000000000000000" in out
    assert out.count("\nworkspace\n") == 1  # the run directory shows only the workspace
    assert f"home={jail_mod.JAIL_HOME} key=unset" in out
    assert (run / "workspace" / "pipeline.txt").read_text() == "v1\nedited\n"
    assert not (run / "planted").exists() and sorted(os.listdir(run)) == ["inner", "workspace"]


def test_bad_jail_options_are_one_line_errors(tmp_path, capsys, monkeypatch):
    from synthloop.autoresearch.cli import main

    base = ["examples/constant", "--synthesizer-model", "mutate", "--researcher-cmd", "true",
            "--out", str(tmp_path / "x")]
    assert main([*base, "--researcher-jail", "chroot"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'chroot'" in err and "'namespace', 'bwrap', 'none'" in err
    monkeypatch.delenv("AR_NOT_SET", raising=False)
    assert main([*base, "--researcher-env", "AR_NOT_SET"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--researcher-env AR_NOT_SET: the variable is not set" in err
    monkeypatch.setattr(jail_mod, "_PROBED", {})
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on this PATH
    assert main([*base, "--researcher-jail", "bwrap"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bwrap is not installed" in err and "valid: auto, namespace, bwrap, none" in err
    assert not (tmp_path / "x").exists()  # refused before anything was created


# ------------------------------------------------------------------ a whole run with a jailed researcher
AGENT = textwrap.dedent('''
    import ctypes, json, os, pathlib, subprocess, sys, urllib.request
    url, run, harness, outside, marker = sys.argv[1:6]
    def call(method, path, body=None):
        req = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(),
                                     method=method, headers={"Content-Type": "application/json",
                                     "Authorization": "Bearer " + os.environ["SYNTHLOOP_SERVICE_TOKEN"]})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
    out = {}
    def attempt(name, fn):
        try:
            fn()
            out[name] = "ALLOWED"
        except OSError as e:
            out[name] = "denied: " + (e.strerror or str(e))
    p = pathlib.Path("pipeline/system_prompt.md")
    p.write_text(p.read_text().replace("$brief", "$brief\\n\\nBE BOLD: aim for the maximum.\\n"))
    out["experiment"] = call("POST", "/experiments", {"summary": "bold", "reason": "under-reaching"})[1]["decision"]
    try:
        urllib.request.urlopen(url + "/status")
    except urllib.error.HTTPError as e:
        out["no_token"] = e.code
    attempt("read_ledger", lambda: open(run + "/autoresearch.sqlite", "rb").read())
    attempt("read_inner_run", lambda: open(run + "/inner/exp000_r0/run.sqlite", "rb").read())
    attempt("read_pipeline_git", lambda: open(run + "/pipeline.git/HEAD").read())
    attempt("read_harness_environ", lambda: open("/proc/%s/environ" % harness, "rb").read())
    attempt("write_run_dir", lambda: open(run + "/planted.txt", "w").write("x"))
    attempt("write_outside", lambda: open(outside + "/planted.txt", "w").write("x"))
    attempt("write_tmp", lambda: open("/tmp/jail-scratch-%s.txt" % marker, "w").write("x"))
    libc = ctypes.CDLL(None, use_errno=True)
    out["umount_run_dir"] = "ALLOWED" if libc.umount2(run.encode(), 2) == 0 else os.strerror(ctypes.get_errno())
    out["run_listing"] = sorted(os.listdir(run))
    out["env"] = sorted(os.environ)
    out["passed"] = os.environ.get("AR_RESEARCHER_KEY")
    subprocess.Popen(["sleep", marker], start_new_session=True)  # outlives us in another session
    print("JAIL-RESULT " + json.dumps(out), flush=True)
''')


def test_jailed_external_researcher_edits_measures_and_sees_nothing_private(tmp_path, synth_server, monkeypatch):
    script = agent_script(tmp_path, "agent.py", AGENT)
    policy = jail_for(script, env=("AR_RESEARCHER_KEY",))
    if policy.mode == "none":
        pytest.skip("no researcher jail on this machine (printed above)")
    monkeypatch.setenv("AR_RESEARCHER_KEY", "researcher-secret")
    marker = str(random.randint(10**6, 10**7))
    outside = Path(sys.prefix)
    run = tmp_path / "ar"
    cfg = AutoresearchConfig(
        task="examples/constant", task_options={"heldout_penalty": 0.0123457}, synthesizer_model="openai/fake",
        synthesizer_base_url=synth_server.base_url,
        researcher_cmd=f"{sys.executable} {script} {{url}} {run.resolve()} {os.getpid()} {outside} {marker}",
        replicates=2, budget=Budget(evals=3), backoff_base_s=0.01, workers=2, out=run, start_files=FAST, jail=policy)
    try:
        res = run_autoresearch(cfg, announce=lambda s: None)
    finally:
        leaked = (outside / "planted.txt").exists()
        (outside / "planted.txt").unlink(missing_ok=True)
    log = (run / "researcher.log").read_text()
    line = next(ln for ln in log.splitlines() if ln.startswith("JAIL-RESULT "))
    out = json.loads(line.split(" ", 1)[1])
    assert out["experiment"] == "keep" and out["no_token"] == 401  # it edits and measures; others get 401
    for k in ("read_ledger", "read_inner_run", "read_pipeline_git", "read_harness_environ", "write_run_dir",
              "write_outside"):
        assert out[k].startswith("denied"), (k, out[k])
    assert out["write_tmp"] == "ALLOWED" and out["umount_run_dir"] != "ALLOWED" and not leaked
    assert out["run_listing"] == ["workspace"]
    assert "OPENAI_API_KEY" not in out["env"] and out["passed"] == "researcher-secret"
    assert set(out["env"]) <= {*jail_mod.ENV_BASE, "HOME", "TMPDIR", "PWD", "SHLVL", "_", "LC_CTYPE",
                               "SYNTHLOOP_SERVICE_URL", "SYNTHLOOP_SERVICE_TOKEN", "AR_RESEARCHER_KEY"}
    assert not sleepers(marker)  # the process it left behind died with the jail
    assert not (run / "planted.txt").exists() and not Path(f"/tmp/jail-scratch-{marker}.txt").exists()
    db = sqlite3.connect(run / "autoresearch.sqlite")
    sessions = json.loads(db.execute("SELECT value FROM meta WHERE key='sessions'").fetchone()[0])
    assert sessions[0]["jail"]["jailed"] and sessions[0]["jail"]["mode"] == policy.mode
    assert str(run.resolve()) in sessions[0]["jail"]["hidden"]
    assert res.gate["status"] == "beats"
    md = (run / "autoresearch_report.md").read_text()
    assert f"jail {policy.mode} (network host; passed variables: AR_RESEARCHER_KEY" in md and "UNJAILED" not in md


STUBBORN = textwrap.dedent('''
    import json, os, subprocess, sys, time, urllib.request
    url, marker, other = sys.argv[1:4]
    req = urllib.request.Request(url + "/experiments", data=json.dumps({"summary": "probe"}).encode(),
                                 method="POST", headers={"Content-Type": "application/json",
                                 "Authorization": "Bearer " + os.environ["SYNTHLOOP_SERVICE_TOKEN"]})
    print("service", urllib.request.urlopen(req, timeout=60).status, flush=True)
    try:
        urllib.request.urlopen(other, timeout=5)
        print("other REACHED", flush=True)
    except OSError as e:
        print("other unreachable:", e, flush=True)
    subprocess.Popen(["sleep", marker], start_new_session=True)  # escapes our session and group
    time.sleep(600)  # ignores that the budget is spent
''')


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a) -> None:
        pass


@pytest.mark.parametrize("mode", ["namespace", "bwrap", "none"])
def test_budget_end_kills_the_whole_tree_and_network_none_reaches_only_the_service(tmp_path, synth_server, mode):
    """network none: the service answers on the jail's own loopback, another 127.0.0.1 server does not; the agent
    and a grandchild that left its session are killed at the end of the budget (unjailed too)."""
    script = agent_script(tmp_path, "stubborn.py", STUBBORN)
    network = "host" if mode == "none" else "none"
    if mode != "none":
        need(mode, network)
    policy = JailPolicy(mode=mode, network=network, binds=(str(script.parent),) if mode != "none" else ())
    other = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    marker = str(random.randint(10**6, 10**7))
    run = tmp_path / "ar"
    cfg = AutoresearchConfig(
        task="examples/constant", synthesizer_model="openai/fake", synthesizer_base_url=synth_server.base_url,
        researcher_cmd=f"{sys.executable} {script} {{url}} {marker} http://127.0.0.1:{other.server_address[1]}/",
        replicates=2, budget=Budget(evals=2), backoff_base_s=0.01, workers=2, out=run, start_files=FAST,
        external_grace_s=0.5, jail=policy)
    try:
        res = run_autoresearch(cfg, announce=lambda s: None)
    finally:
        other.shutdown()
        other.server_close()
    log = (run / "researcher.log").read_text()
    assert "service 200" in log and "after the budget was spent" in res.stop_reason
    assert ("other unreachable" in log) == (network == "none")
    deadline = time.monotonic() + 5
    while sleepers(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sleepers(marker)
    md = (run / "autoresearch_report.md").read_text()
    if mode == "none":
        assert "**UNJAILED** (--researcher-jail none)" in md and "ran unjailed" in md
        db = sqlite3.connect(run / "autoresearch.sqlite")
        sessions = json.loads(db.execute("SELECT value FROM meta WHERE key='sessions'").fetchone()[0])
        assert sessions[0]["jail"]["jailed"] is False and sessions[0]["jail"]["mode"] == "none"
    else:
        assert "network none" in md


def test_service_refuses_requests_without_the_token(tmp_path):
    from synthloop.autoresearch.researcher import http_json
    from synthloop.autoresearch.service import EvalService

    svc = EvalService(None, token="t0ken")
    svc.harness = object()  # type: ignore[assignment]  # never reached: every request below is refused
    svc.serve()
    try:
        assert http_json("GET", svc.url + "/status")[0] == 401
        code, body = http_json("GET", svc.url + "/status", token="wrong")
        assert code == 401 and "SYNTHLOOP_SERVICE_TOKEN" in body["error"]
        assert http_json("POST", svc.url + "/experiments", {"summary": "x"})[0] == 401
    finally:
        svc.stop()
