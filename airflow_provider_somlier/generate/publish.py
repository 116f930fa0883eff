"""Deliver a rendered DAG file: as a GitHub pull request, or into a local git repository.

GitHub: one branch ``somlier/<dag_id>`` and one pull request per DAG. Running the
same command again updates that branch and pull request; a dag_id already on the
base branch, or claimed by another open pull request, is refused. If any step fails
after this run created the branch, the branch is deleted again, so no half-made
branch is left behind (or, if deleting it fails, the message names it) -- unless another
run has committed to it since. Two runs racing on one dag_id give one pull request and
one :class:`ConcurrentPublishError`: the branch, the file and the pull request are each
created by exactly one of them (GitHub refuses the second creation), and the loser never
deletes what the winner built on. The token is used for
authentication only: every message passes through ``mask_tokens``, so it never appears
in output, logs or error messages.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from airflow_provider_somlier.errors import SomlierError, SomlierInputError
from airflow_provider_somlier.generate.redact import mask_tokens

if TYPE_CHECKING:
    from github.Repository import Repository


class PublishError(SomlierError):
    """The DAG file could not be delivered."""


class DagIdTakenError(SomlierInputError):
    """The dag_id is already used on the base branch or by another open pull request."""


class ConcurrentPublishError(PublishError):
    """Another run published the same dag_id at the same moment and got there first."""


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
        _write_whole(target, source)
        self._git("add", "--", str(relative))
        self._git(
            "-c", "user.name=SoMLier", "-c", "user.email=somlier@localhost",
            "commit", "--quiet", "-m", f"{'Update' if existed else 'Add'} DAG {dag_id}\n\n{description}",
            "--", str(relative),
        )
        return Published(str(target), "updated" if existed else "created")


def _write_whole(target: Path, source: str) -> None:
    """Write beside ``target``, then rename: the DAG processor never reads a half-written file.

    The temporary name is short and fixed in length (``.somlier-XXXXXXXX.partial``, hidden and
    not ``.py``, so never parsed): a name derived from the target's would pass the file system's
    255-byte limit for the longest dag_ids Airflow accepts.
    """
    import os
    import tempfile

    descriptor, partial = tempfile.mkstemp(prefix=".somlier-", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(source)
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class GitHubPublisher:
    """Open (or update) a pull request adding the DAG to a dags repository on GitHub."""

    token: str
    repository: str  # owner/name
    base_branch: str = "main"
    folder: str = "dags"
    base_url: str = "https://api.github.com"
    # GitHub asks integrations to space out requests (writes above all) to avoid its
    # secondary rate limits; PyGithub's pacing does that. Tests against a local server turn it off.
    paced: bool = True

    def describe(self, dag_id: str) -> str:
        return (
            f"open a pull request on {self.repository} (base {self.base_branch}) from branch "
            f"somlier/{dag_id} adding {self.folder}/{dag_id}.py"
        )

    def _repo(self) -> Repository:
        from github import Auth, Github

        client = Github(
            auth=Auth.Token(self.token), base_url=self.base_url, retry=None, timeout=30,
            seconds_between_requests=0.25 if self.paced else None, seconds_between_writes=1.0 if self.paced else None,
        )
        return client.get_repo(self.repository)

    def publish(self, dag_id: str, source: str, description: str) -> Published:
        from github import GithubException

        branch = f"somlier/{dag_id}"
        path = f"{self.folder}/{dag_id}.py"
        claim = _BranchClaim(branch)
        step = f"reading {self.repository}"
        try:
            repo = self._repo()
            owner = self.repository.split("/", 1)[0]
            step = f"looking for {path} on {self.base_branch}"
            if _file_sha(repo, path, self.base_branch) is not None:
                raise DagIdTakenError(f"dag_id {dag_id!r} is already used on {self.base_branch}: {path} exists")
            step = "listing open pull requests"
            ours = list(repo.get_pulls(state="open", base=self.base_branch, head=f"{owner}:{branch}"))
            for pull in repo.get_pulls(state="open", base=self.base_branch):
                if pull.head.ref != branch and any(f.filename == path for f in pull.get_files()):
                    raise DagIdTakenError(f"dag_id {dag_id!r} is already proposed in open pull request #{pull.number}")
            if _branch_sha(repo, branch) is None:
                step = f"creating branch {branch} from {self.base_branch}"
                claim.base_sha = repo.get_branch(self.base_branch).commit.sha
                try:
                    repo.create_git_ref(ref=f"refs/heads/{branch}", sha=claim.base_sha)
                except GithubException as exc:
                    if exc.status == 422 and _branch_sha(repo, branch) is not None:
                        raise ConcurrentPublishError(
                            f"another run created branch {branch} for dag_id {dag_id!r} at the same moment: "
                            "let it finish, then run this command again to update its pull request"
                        ) from None
                    raise
                claim.created = True
            step = f"writing {path} on branch {branch}"
            current = _file_sha(repo, path, branch)
            message = f"{'Update' if current else 'Add'} DAG {dag_id} (generated by SoMLier)"
            try:
                if current is None:
                    written = repo.create_file(path, message, source, branch=branch)
                else:
                    written = repo.update_file(path, message, source, current, branch=branch)
            except GithubException as exc:
                # GitHub refuses a write based on a file version that is no longer there (409, or
                # 422 when the file appeared since it was read): another run committed first.
                if exc.status in (409, 422) and _file_sha(repo, path, branch) != current:
                    raise ConcurrentPublishError(
                        f"another run committed {path} on branch {branch} at the same moment: its pull request "
                        "holds its file; run this command again to update it with this run's inputs"
                    ) from None
                raise
            claim.own_commit = written["commit"].sha
            claim.wrote_first = current is None
            body = f"Generated by SoMLier.\n\n{description}"
            if ours:
                step = f"updating pull request #{ours[0].number}"
                ours[0].edit(body=body)
                return Published(ours[0].html_url, "updated")
            step = f"opening a pull request from {branch} to {self.base_branch}"
            try:
                pull = repo.create_pull(base=self.base_branch, head=branch, title=f"Add DAG {dag_id}", body=body)
            except GithubException as exc:
                if exc.status == 422 and (
                    opened := list(repo.get_pulls(state="open", base=self.base_branch, head=f"{owner}:{branch}"))
                ):
                    raise ConcurrentPublishError(
                        f"another run opened pull request #{opened[0].number} for dag_id {dag_id!r} at the same "
                        "moment; its branch holds this run's file, its description the other run's inputs: run "
                        "this command again to make them agree"
                    ) from None
                raise
            return Published(pull.html_url, "created")
        except (GithubException, OSError, SomlierError) as exc:
            cleanup = self._delete_branch(claim) if claim.created else ""
            if isinstance(exc, SomlierError):
                if not cleanup:
                    raise
                raise type(exc)(f"{exc}{cleanup}") from None
            message = _explain(exc, step, self.repository, self.base_branch, self.base_url)
            raise PublishError(mask_tokens(message + cleanup, (self.token,))) from None

    def _delete_branch(self, claim: _BranchClaim) -> str:
        """Delete the branch this run created, unless another run has committed to it since;
        return what to tell the user when the branch stays.

        The branch is this run's to delete only while its head is the base commit it was
        created at, or this run's own commit made straight on it. Any other head holds
        another run's work (possibly under this run's commit), which that run's pull request
        needs: deleting it is what left two racing runs with no pull request at all.
        """
        from github import GithubException

        branch = claim.branch
        try:
            repo = self._repo()
            head = _branch_sha(repo, branch)
            if head is None:
                return ""
            if head not in claim.deletable_heads():
                return f"; branch {branch} was left as it is: another run has committed to it"
            repo.get_git_ref(f"heads/{branch}").delete()
        except (GithubException, OSError) as exc:
            status = getattr(exc, "status", None) or type(exc).__name__
            return (
                f"; the branch {branch} this run created could not be deleted ({status}): "
                f"delete it on GitHub ({self.repository}) before running again"
            )
        return ""


@dataclass
class _BranchClaim:
    """What one run did to the branch ``somlier/<dag_id>``: whether it created it, from which
    base commit, and the commit it made there (if any)."""

    branch: str
    created: bool = False
    base_sha: str | None = None
    own_commit: str | None = None
    wrote_first: bool = False  # the run's commit added the file: nothing of another run's lies under it

    def deletable_heads(self) -> set[str]:
        heads = {self.base_sha} if self.base_sha else set()
        if self.own_commit and self.wrote_first:
            heads.add(self.own_commit)
        return heads


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


def _explain(exc: Exception, step: str, repository: str, base_branch: str, base_url: str) -> str:
    """What went wrong while ``step``, and what to do about it, for every status GitHub may answer."""
    from github import GithubException, RateLimitExceededException

    if isinstance(exc, RateLimitExceededException):
        return f"GitHub's API rate limit is exhausted while {step}: wait for it to reset and run the command again"
    if not isinstance(exc, GithubException):
        return (
            f"GitHub at {base_url} could not be reached while {step} ({type(exc).__name__}): check the network "
            "and SOMLIER_GITHUB_BASE_URL, then run the command again"
        )
    status = exc.status
    detail = exc.data.get("message", "") if isinstance(exc.data, dict) else ""
    said = f" (GitHub said: {detail[:300]})" if detail else ""
    if status == 401:
        hint = "the token was rejected: check GITHUB_PERSONAL_ACCESS_TOKEN is current and not revoked"
    elif status == 403:
        hint = (
            f"the token may not write to {repository}: it needs the 'repo' scope (classic) or contents and "
            "pull-request write (fine-grained), and SSO authorization if the organization requires it"
        )
    elif status == 404:
        hint = (
            f"repository {repository} or its base branch {base_branch} was not found, or the token cannot see it: "
            "check SOMLIER_DAGS_REPO, SOMLIER_DAGS_BASE_BRANCH and the token's repository access"
        )
    elif status == 409:
        hint = "someone changed the branch at the same moment: run the command again"
    elif status == 422:
        hint = (
            f"GitHub refused the request as invalid: check that base branch {base_branch} exists "
            "(SOMLIER_DAGS_BASE_BRANCH) and that no other pull request was opened from the same branch, then run again"
        )
    elif status >= 500:
        hint = "GitHub failed on its side: nothing to fix here; run the command again in a few minutes"
    else:
        hint = "GitHub answered unexpectedly: check SOMLIER_GITHUB_BASE_URL points at the API (https://HOST/api/v3)"
    return f"{hint} ({status} while {step}){said}"
