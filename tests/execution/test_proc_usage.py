"""proc_usage: the CPU of a still running process, every thread counted (the supervisor's reading of a candidate)."""

import subprocess
import sys
import time

from synthloop.execution.isolation import proc_usage

SPIN_IN_A_THREAD = """
import threading, time
def spin():
    t = time.process_time()
    while time.process_time() - t < 0.4:
        pass
threading.Thread(target=spin).start()
print("go", flush=True)
time.sleep(30)
"""


def test_cpu_burned_outside_the_main_thread_is_counted():
    p = subprocess.Popen([sys.executable, "-c", SPIN_IN_A_THREAD], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "go"
        deadline = time.monotonic() + 20
        cpu, rss = proc_usage(p.pid)
        while cpu < 0.4 and time.monotonic() < deadline:  # the main thread sleeps: all of it is the other thread's
            time.sleep(0.05)
            cpu, rss = proc_usage(p.pid)
        assert cpu >= 0.4 and rss > 0
    finally:
        p.kill()
        p.wait()
