"""A private, pinned checkout of the repository holding the MLflow Projects.

Training never runs in the user's repository: ``mlflow run`` on a git URI adds remotes,
creates ``.git/shallow`` and checks out over uncommitted edits, and parallel runs race on
git's lock files. Instead the repository is cloned once into a temporary directory, the
ref is resolved there to one commit SHA, and every combination of a grid runs against
that clone at that commit -- so a grid trains one commit even if the branch moves.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_somlier.errors import InvalidArgumentError, SomlierError

#: Deadline of one git command (clone, rev-parse, checkout), in seconds.
GIT_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Checkout:
    """A project folder inside a private clone, at one commit."""

    repository: str
    project_name: str
    commit: str
    project_dir: Path


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # No prompt for credentials (it would wait forever in a worker); no user config hooks.
    env = os.environ | {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=GIT_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise SomlierError(f"git {args[0]} did not finish within {GIT_TIMEOUT_SECONDS} s") from None


def _resolve(clone: Path, ref: str) -> str:
    """The commit ``ref`` names in the clone: a branch of the remote, a tag, or a (short) SHA."""
    for candidate in (f"refs/remotes/origin/{ref}", f"refs/tags/{ref}", ref):
        done = _git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", cwd=clone)
        if done.returncode == 0:
            return done.stdout.strip()
    raise InvalidArgumentError(f"PROJECT_REF {ref!r} is not a branch, tag or commit of the repository")


@contextlib.contextmanager
def project_checkout(repository: str, ref: str, project_name: str) -> Iterator[Checkout]:
    """Clone ``repository`` into a temporary directory, check out ``ref`` and yield the project in it.

    The directory is removed on exit. ``repository`` is anything ``git clone`` takes
    (``https://``, ``git@``, ``file://`` or a local path); the source is only read.
    """
    if not ref or ref.startswith("-"):
        raise InvalidArgumentError(f"PROJECT_REF {ref!r} must name a branch, tag or commit")
    if not repository or repository.startswith("-"):
        raise InvalidArgumentError(f"GITHUB_URI {repository!r} must be a git repository URL or path")
    folder = Path(tempfile.mkdtemp(prefix="somlier-project-"))
    try:
        clone = folder / "repo"
        done = _git("clone", "--quiet", "--no-checkout", "--", repository, str(clone))
        if done.returncode:
            raise InvalidArgumentError(f"cannot clone {repository!r}: {done.stderr.strip()[-500:]}")
        commit = _resolve(clone, ref)
        done = _git("checkout", "--quiet", "--detach", commit, cwd=clone)
        if done.returncode:
            raise SomlierError(f"cannot check out {commit} of {repository}: {done.stderr.strip()[-500:]}")
        project_dir = (clone / project_name).resolve()
        if not project_dir.is_relative_to(clone.resolve()) or not (project_dir / "MLproject").is_file():
            raise InvalidArgumentError(
                f"PROJECT_NAME {project_name!r} is not a folder holding an MLproject file in {repository} "
                f"at {ref} ({commit[:12]})"
            )
        yield Checkout(repository, project_name, commit, project_dir)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
