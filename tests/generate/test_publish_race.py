"""Two runs publishing one dag_id at the same moment, in forced interleavings against the GitHub fake.

Each run has its own token, so the fake can hold one run's request while the other's go
through: every interleaving below happens on every run of the test, not by luck of timing.
Whatever the order, exactly one pull request is opened and exactly one run is refused with
:class:`ConcurrentPublishError`, and the branch holding the pull request's commit survives.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from airflow_provider_somlier.generate.publish import ConcurrentPublishError, GitHubPublisher, Published
from tests.github_server import FakeGitHub

TOKEN_A, TOKEN_B = "ghp_runAaaaaaaaaaaaaaaaaaaaaaa", "ghp_runBbbbbbbbbbbbbbbbbbbbbbbb"
PATH = "dags/d.py"


@dataclass
class Hold:
    """Holds the first request of ``token`` with ``method`` on a path ending in ``suffix`` until released."""

    token: str
    method: str
    suffix: str
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    used: bool = False

    def release(self) -> None:
        self.released.set()


class Run:
    """One ``publish`` in its own thread, with what it returned or raised."""

    def __init__(self, github: FakeGitHub, token: str, source: str) -> None:
        self.outcome: Published | BaseException | None = None
        publisher = GitHubPublisher(token=token, repository="mlops/dags", base_url=github.base_url, paced=False)

        def work() -> None:
            try:
                self.outcome = publisher.publish("d", source, f"- from {source.strip()}")
            except BaseException as exc:  # noqa: BLE001 - the test reads it
                self.outcome = exc

        self.thread = threading.Thread(target=work, daemon=True)
        self.thread.start()

    def finished(self) -> BaseException | Published | None:
        self.thread.join(30)
        assert not self.thread.is_alive(), "the run hung"
        return self.outcome


@pytest.fixture
def github():
    with FakeGitHub() as server:
        server.extra_tokens = {TOKEN_A, TOKEN_B}
        yield server


def holding(github: FakeGitHub, *holds: Hold) -> None:
    lock = threading.Lock()

    def before_request(method: str, path: str, token: str) -> None:
        for hold in holds:
            with lock:
                matches = not hold.used and (hold.token, hold.method) == (token, method) and path.endswith(hold.suffix)
                hold.used = hold.used or matches
            if matches:
                hold.reached.set()
                assert hold.released.wait(30), "a held request was never released"

    github.before_request = before_request


def wait(hold: Hold) -> None:
    assert hold.reached.wait(30), f"the run never reached {hold.method} {hold.suffix}"


def assert_one_pull_request_and_one_refusal(github: FakeGitHub, winner: Run, loser: Run, refusal: str) -> None:
    won, lost = winner.finished(), loser.finished()
    assert isinstance(won, Published) and won.action == "created", won
    assert isinstance(lost, ConcurrentPublishError) and refusal in str(lost), lost
    assert [(p["head"], p["state"]) for p in github.pulls] == [("somlier/d", "open")]
    assert "somlier/d" in github.branches and PATH in github.files["somlier/d"]


def test_a_run_whose_write_lost_leaves_the_branch_the_other_run_committed_to(github):
    """The reported order: B creates the branch, A commits onto it, B's write is refused,
    B cleans up, and only then A opens its pull request."""
    b_writes, a_opens = Hold(TOKEN_B, "PUT", f"/contents/{PATH}"), Hold(TOKEN_A, "POST", "/pulls")
    holding(github, b_writes, a_opens)
    run_b = Run(github, TOKEN_B, "# B\n")
    wait(b_writes)  # B created the branch and read no file there
    run_a = Run(github, TOKEN_A, "# A\n")
    wait(a_opens)  # A committed its file on B's branch
    b_writes.release()
    lost = run_b.finished()
    assert "was left as it is: another run has committed to it" in str(lost)
    a_opens.release()
    assert_one_pull_request_and_one_refusal(github, run_a, run_b, "another run committed dags/d.py")
    assert github.files["somlier/d"][PATH] == "# A\n"


def test_two_runs_creating_the_branch_at_once_give_one_pull_request(github):
    a_creates, b_creates = Hold(TOKEN_A, "POST", "/git/refs"), Hold(TOKEN_B, "POST", "/git/refs")
    holding(github, a_creates, b_creates)
    run_a, run_b = Run(github, TOKEN_A, "# A\n"), Run(github, TOKEN_B, "# B\n")
    wait(a_creates)
    wait(b_creates)  # both found no branch
    a_creates.release()
    assert isinstance(run_a.finished(), Published)
    b_creates.release()
    assert_one_pull_request_and_one_refusal(github, run_a, run_b, "another run created branch somlier/d")
    assert github.files["somlier/d"][PATH] == "# A\n"


def test_a_run_that_committed_on_the_other_runs_commit_is_refused_at_the_pull_request(github):
    b_opens, a_opens = Hold(TOKEN_B, "POST", "/pulls"), Hold(TOKEN_A, "POST", "/pulls")
    holding(github, b_opens, a_opens)
    run_b = Run(github, TOKEN_B, "# B\n")
    wait(b_opens)  # B created the branch and committed
    run_a = Run(github, TOKEN_A, "# A\n")
    wait(a_opens)  # A updated B's file on B's branch
    b_opens.release()
    assert isinstance(run_b.finished(), Published)
    a_opens.release()
    assert_one_pull_request_and_one_refusal(github, run_b, run_a, "another run opened pull request #1")


def test_a_run_that_fails_alone_still_deletes_the_branch_it_created(github):
    github.fail[("POST", "/pulls")] = 500
    with pytest.raises(Exception, match="GitHub failed on its side"):
        GitHubPublisher(token=github.token, repository="mlops/dags", base_url=github.base_url, paced=False).publish(
            "d", "# alone\n", ""
        )
    assert set(github.branches) == {"main"}
