"""A checkout or virtual environment under /tmp must stay importable inside the sandbox.

The candidate's /tmp is a fresh private tmpfs; without the read-only bind-back of
import paths, a project cloned into /tmp (as CI may do) could not lazily import
its own modules (or numpy's submodules) in a candidate. Run in a fresh
interpreter, as a real engine would be, with the module only on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = r'''
import asyncio, json, sys
sys.path.insert(0, sys.argv[2])
from exec_tasks import EchoTask, art, case
from synthloop.execution.base import Limits
from synthloop.execution.local import LocalExecutor
ex = LocalExecutor(EchoTask(), workers=1)
ex.start()
body = """
import tmp_only_module
try:
    open(%r, "w").write("x")
    wrote = True
except OSError:
    wrote = False
return [tmp_only_module.VALUE, wrote]
""" % (sys.argv[1] + "/x.txt")
outs = [asyncio.run(ex.run(art(body), [case()], Limits(wall_s=10)))[0] for _ in range(2)]
ex.close()
print(json.dumps([[o.ok, o.output, o.error[-300:]] for o in outs]))
'''


def test_module_under_tmp_is_importable_and_read_only():
    here = Path(__file__).parent
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        pkg = Path(tmp) / "site"
        pkg.mkdir()
        (pkg / "tmp_only_module.py").write_text("VALUE = 41 + 1\n")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pkg), os.environ.get("PYTHONPATH", "")])}
        r = subprocess.run([sys.executable, "-c", SCRIPT, str(pkg), str(here)], capture_output=True, text=True,
                           env=env, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        outs = json.loads(r.stdout.strip().splitlines()[-1])
        # both candidates of the slot (the second gets a renewed /tmp) import it; neither can write there
        assert outs == [[True, [42, False], ""], [True, [42, False], ""]], outs
        assert not (pkg / "x.txt").exists()


JIT_SCRIPT = r'''
import asyncio, json, sys
sys.path.insert(0, sys.argv[2])
import jit_module  # imported (dispatcher and its cache directory chosen) before the zygote forks
from exec_tasks import EchoTask, art, case
from synthloop.execution.base import Limits
from synthloop.execution.local import LocalExecutor
ex = LocalExecutor(EchoTask(), workers=1)
ex.start()
body = """
import numpy as np
import jit_module
return [jit_module.twice(np.arange(3)).tolist(), jit_module.twice(np.arange(2.0)).tolist()]
"""
outs = [asyncio.run(ex.run(art(body), [case()], Limits(wall_s=60)))[0] for _ in range(2)]
ex.close()
print(json.dumps([[o.ok, o.output, o.error[-600:]] for o in outs]))
'''


def test_numba_cache_save_in_a_read_only_tree_does_not_fail_the_candidate():
    """A ``cache=True`` kernel first compiled inside the sandbox must run; its cache save may not.

    This is what broke SSD episodes on a fresh clone: the engine's numba dispatchers chose the
    source tree as cache directory, and a candidate compiling a new specialisation hit EROFS on save.
    """
    here = Path(__file__).parent
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        pkg = Path(tmp) / "site"
        pkg.mkdir()
        (pkg / "jit_module.py").write_text(
            "import numba\n\n@numba.njit(cache=True)\ndef twice(x):\n    return 2 * x\n")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pkg), os.environ.get("PYTHONPATH", "")])}
        r = subprocess.run([sys.executable, "-c", JIT_SCRIPT, str(pkg), str(here)], capture_output=True,
                           text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        outs = json.loads(r.stdout.strip().splitlines()[-1])
        assert outs == [[True, [[0, 2, 4], [0.0, 2.0]], ""]] * 2, outs


POOL_SCRIPT = r'''
import sys, warnings
sys.path.insert(0, sys.argv[1])
import numba, numpy as np
from exec_tasks import EchoTask
from synthloop.execution.local import LocalExecutor, fork_unsafe_thread_pools
assert fork_unsafe_thread_pools() == ""
@numba.njit(parallel=True)
def total(a):
    s = 0.0
    for i in numba.prange(a.size):
        s += a[i]
    return s
total(np.ones(100))
ex = LocalExecutor(EchoTask(), workers=1)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    ex.start()
ex.close()
print(numba.threading_layer(), "|", fork_unsafe_thread_pools(), "|", [str(w.message) for w in caught])
'''


def test_executor_warns_when_a_fork_unsafe_thread_pool_already_runs():
    """numba's omp/tbb pools do not survive fork: starting the executor after one ran says so."""
    here = Path(__file__).parent
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}  # numba's own default layer
    r = subprocess.run([sys.executable, "-c", POOL_SCRIPT, str(here)], capture_output=True, text=True, timeout=300,
                       env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    layer, pools, caught = r.stdout.strip().splitlines()[-1].split(" | ")
    if layer in ("omp", "tbb"):
        assert pools == f"numba's {layer} thread pool" and "may hang" in caught and pools in caught
    else:  # the workqueue layer is fork-safe: no warning
        assert pools == "" and caught == "[]"
