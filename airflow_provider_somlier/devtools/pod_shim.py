"""A pod's container as the local node runs it: the first process's duties over one process tree.

In a container, a process whose parent dies is re-parented inside the container, and the
first process's exit ends every process left in it. Airflow's task supervisor runs each
task in a process group of its own, so a node that signalled only the container's process
group would leave the task running after its pod ended. This shim makes itself a child
subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``), so every process the command starts stays
beneath it; it forwards SIGTERM to the command (as ``dumb-init`` does in Airflow's image),
and when the command exits it kills whatever is left and exits with the command's code
(128 + N for signal N). The node kills a pod by killing the shim's whole tree
(``airflow_local.kill_tree``), which is complete because nothing escapes the subreaper.

Run as ``python -m airflow_provider_somlier.devtools.pod_shim COMMAND [ARG …]``.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def main(argv: list[str]) -> int:
    import psutil

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        command = subprocess.Popen(argv)
    except OSError as exc:
        print(f"cannot start {argv[:1]}: {exc}", file=sys.stderr, flush=True)
        return 128
    signal.signal(signal.SIGTERM, lambda *_: command.send_signal(signal.SIGTERM))
    code = command.wait()
    left = psutil.Process().children(recursive=True)
    for process in left:  # the container ends with its first process
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(left, timeout=5)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
