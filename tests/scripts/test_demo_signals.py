"""A stop signal the interpreter drops still stops the demo.

Python runs a signal handler wherever the main thread is; when that is a garbage
collector's callback, the exception it raises is printed as "Exception ignored" and
dropped. The demo must then stop at its next step, exit 128 + the signal, and print no
traceback. The handler is driven into such a callback on purpose, in a real process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"

PROGRAM = textwrap.dedent("""
    import importlib.util, os, signal, sys, weakref

    spec = importlib.util.spec_from_file_location("somlier_demo", sys.argv[1])
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    for each in demo.STOP_SIGNALS:
        signal.signal(each, demo._stop)
    sys.unraisablehook = demo._quiet_dropped_stop

    class Thing:
        pass

    def collected(ref):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100_000):  # the handler runs here, inside the callback: its exception is dropped
            pass

    thing = Thing()
    watcher = weakref.ref(thing, collected)
    del thing
    print("went on after the dropped stop", flush=True)
    try:
        demo.step("the next step")
    except demo.Stopped as stopped:
        sys.exit(128 + stopped.signum)
    sys.exit(0)
""")


def test_a_stop_dropped_inside_a_gc_callback_takes_effect_at_the_next_step():
    done = subprocess.run([sys.executable, "-c", PROGRAM, str(DEMO)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 128 + signal.SIGTERM, done.stdout + done.stderr
    assert "went on after the dropped stop" in done.stdout  # the callback really dropped it
    assert "the next step" not in done.stdout  # the step did not run
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
