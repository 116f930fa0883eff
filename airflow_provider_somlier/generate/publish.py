"""Deliver a rendered DAG file: as a GitHub pull request, or into a local git repository.

GitHub: one branch ``somlier/<dag_id>`` and one pull request per DAG. Running the
same command again updates that branch and pull request; a dag_id already on the
base branch, or claimed by another open pull request, is refused. If any step fails
after this run created the branch, the branch is deleted again, so no half-made
branch is left behind. The token is used for authentication only: it never appears
in output, logs or error messages.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from airflow_provider_somlier.errors import SomlierError, SomlierInputError

if TYPE_CHECKING:
    from github.Repository import Repository


class PublishError(SomlierError):
    """The DAG file could not be delivered."""


class DagIdTakenError(SomlierInputError):
    """The dag_id is already used on the base branch or by another open pull request."""


@dataclass(frozen=True)
class Published:
    location: str  # a PR URL, or the path of the committed file
    action: str  # "created" | "updated" | "unchanged"


class Publisher(Protocol):
    def publish(self, dag_id: str, source: str, description: str) -> Published: ...

    def describe(self, dag_id: str) -> str: ...


@dataclass(frozen=True)
class LocalGitPublisher:
    """Write ``<folder>/<dag_id>.py`` into a local git work tree and commit it on its current branch."""

    repo_path: Path
    folder: str = "dags"

    def describe(self, dag_id: str) -> str:
        return f"commit {self.folder}/{dag_id}.py to the git repository at {self.repo_path}"

    def _git(self, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(self.repo_path), *args], capture_output=True, text=True)
        if done.returncode:
            raise PublishError(f"git {' '.join(args[:2])} failed in {self.repo_path}: {done.stderr.strip()}")
        return done.stdout.strip()

    def publish(self, dag_id: str, source: str, description: str) -> Published:
        if not (self.repo_path / ".git").exists():
            raise PublishError(f"{self.repo_path} is not a git repository (run `git init` there first)")
        relative = Path(self.folder) / f"{dag_id}.py"
        target = self.repo_path / relative
        existed = target.exists()
        if existed and target.read_text() == source:
            return Published(str(target), "unchanged")
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write beside, then rename: the DAG processor never reads a half-written file.
        partial = target.with_suffix(".py.partial")
        partial.write_text(source)
        partial.replace(target)
        self._git("add", "--", str(relative))
        self._git(
            "-c", "user.name=SoMLier", "-c", "user.email=somlier@localhost",
            "commit", "--quiet", "-m", f"{'Update' if existed else 'Add'} DAG {dag_id}\n\n{description}",
            "--", str(relative),
        )
        return Published(str(target), "updated" if existed else "created")


@dataclass(frozen=True)
class GitHubPublisher:
    """Open (or update) a pull request adding the DAG to a dags repository on GitHub."""

    token: str
    repository: str  # owner/name
    base_branch: str = "main"
    folder: str = "dags"
    base_url: str = "https://api.github.com"

    def describe(self, dag_id: str) -> str:
        return (
            f"open a pull request on {self.repository} (base {self.base_branch}) from branch "
            f"somlier/{dag_id} adding {self.folder}/{dag_id}.py"
        )

    def _repo(self) -> Repository:
        from github import Auth, Github

        client = Github(auth=Auth.Token(self.token), base_url=self.base_url, retry=None, timeout=30)
        return client.get_repo(self.repository)

    def publish(self, dag_id: str, source: str, description: str) -> Published:
        from github import GithubException

        branch = f"somlier/{dag_id}"
        path = f"{self.folder}/{dag_id}.py"
        created_branch = False
        try:
            repo = self._repo()
            owner = self.repository.split("/", 1)[0]
            if _file_sha(repo, path, self.base_branch) is not None:
                raise DagIdTakenError(f"dag_id {dag_id!r} is already used on {self.base_branch}: {path} exists")
            ours = list(repo.get_pulls(state="open", base=self.base_branch, head=f"{owner}:{branch}"))
            for pull in repo.get_pulls(state="open", base=self.base_branch):
                if pull.head.ref != branch and any(f.filename == path for f in pull.get_files()):
                    raise DagIdTakenError(f"dag_id {dag_id!r} is already proposed in open pull request #{pull.number}")
            if _branch_sha(repo, branch) is None:
                base_sha = repo.get_branch(self.base_branch).commit.sha
                repo.create_git_ref(ref=f"refs/heads/{branch}", sha=base_sha)
                created_branch = True
            current = _file_sha(repo, path, branch)
            message = f"{'Update' if current else 'Add'} DAG {dag_id} (generated by SoMLier)"
            if current is None:
                repo.create_file(path, message, source, branch=branch)
            else:
                repo.update_file(path, message, source, current, branch=branch)
            body = f"Generated by SoMLier.\n\n{description}"
            if ours:
                ours[0].edit(body=body)
                return Published(ours[0].html_url, "updated")
            pull = repo.create_pull(base=self.base_branch, head=branch, title=f"Add DAG {dag_id}", body=body)
            return Published(pull.html_url, "created")
        except (GithubException, OSError, SomlierError) as exc:
            if created_branch:
                self._delete_branch(branch)
            if isinstance(exc, SomlierError):
                raise
            raise PublishError(_explain(exc, self.repository)) from None

    def _delete_branch(self, branch: str) -> None:
        from github import GithubException

        try:
            self._repo().get_git_ref(f"heads/{branch}").delete()
        except GithubException:
            pass


def _file_sha(repo: Repository, path: str, ref: str) -> str | None:
    from github import GithubException

    try:
        return repo.get_contents(path, ref=ref).sha
    except GithubException as exc:
        if exc.status == 404:
            return None
        raise


def _branch_sha(repo: Repository, branch: str) -> str | None:
    from github import GithubException

    try:
        return repo.get_git_ref(f"heads/{branch}").object.sha
    except GithubException as exc:
        if exc.status == 404:
            return None
        raise


def _explain(exc: Exception, repository: str) -> str:
    """A message for a GitHub failure that says what to do, and never echoes the token."""
    from github import GithubException, RateLimitExceededException

    if isinstance(exc, RateLimitExceededException):
        return "GitHub's API rate limit is exhausted; wait for it to reset and run the command again"
    status = getattr(exc, "status", None)
    hints = {
        401: "the token was rejected (401): check GITHUB_PERSONAL_ACCESS_TOKEN",
        403: f"the token may not write to {repository} (403): it needs the 'repo' scope / contents and pull-request write",
        404: f"repository {repository} or its base branch was not found (404), or the token cannot see it",
        422: "GitHub refused the request as invalid (422)",
    }
    if isinstance(exc, GithubException) and status in hints:
        detail = exc.data.get("message", "") if isinstance(exc.data, dict) else ""
        return hints[status] + (f": {detail}" if detail else "")
    if isinstance(exc, GithubException):
        return f"GitHub answered {status}"
    return f"GitHub could not be reached: {type(exc).__name__}"
