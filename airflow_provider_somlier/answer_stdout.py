"""Keep a command's stdout for its answer alone.

Commands that print JSON (or YAML) are read by programs: ``json.loads(stdout)``. The
libraries they load write to stdout on their own -- Airflow's logging prints the warnings
it captures there (skops looking names up on Airflow's deprecated module aliases gives
over a thousand of them), and a child process inherits file descriptor 1. While the work
runs, both ``sys.stdout`` and descriptor 1 point at stderr; the caller prints the answer
after they are restored.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator


def _real_stdout_fd() -> bool:
    """Whether ``sys.stdout`` writes to descriptor 1 (not a test runner's in-memory buffer)."""
    try:
        return sys.stdout.fileno() == 1
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


@contextlib.contextmanager
def work_output_to_stderr() -> Iterator[None]:
    """Send everything written to stdout inside the block to stderr, at the Python and the descriptor level."""
    stream = sys.stdout
    stream.flush()
    saved_fd = os.dup(1) if _real_stdout_fd() else None
    if saved_fd is not None:
        os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = stream
        with contextlib.suppress(Exception):
            stream.flush()  # whatever a handler holding the stream buffered belongs on stderr
        sys.stderr.flush()
        if saved_fd is not None:
            os.dup2(saved_fd, 1)
            os.close(saved_fd)
