"""Publishing to GitHub through PyGithub, against a local server speaking GitHub's REST shapes."""

from __future__ import annotations

import pytest

from airflow_provider_somlier.generate.publish import DagIdTakenError, GitHubPublisher, PublishError
from tests.github_server import FakeGitHub

SOURCE = "# a DAG\n"


@pytest.fixture
def github():
    with FakeGitHub() as server:
        yield server


def publisher(github: FakeGitHub, token: str | None = None) -> GitHubPublisher:
    return GitHubPublisher(token=token or github.token, repository="mlops/dags", base_url=github.base_url, paced=False)


def test_a_new_dag_opens_one_pull_request_from_its_own_branch(github):
    published = publisher(github).publish("inference_boston", SOURCE, "- inputs")
    assert published.action == "created"
    assert published.location.endswith("/pull/1")
    assert github.files["somlier/inference_boston"]["dags/inference_boston.py"] == SOURCE
    assert "dags/inference_boston.py" not in github.files["main"]
    assert [(p["head"], p["base"]) for p in github.pulls] == [("somlier/inference_boston", "main")]


def test_running_again_updates_the_branch_and_the_pull_request(github):
    publisher(github).publish("inference_boston", SOURCE, "- v1")
    again = publisher(github).publish("inference_boston", SOURCE + "# v2\n", "- v2")
    assert again.action == "updated"
    assert len(github.pulls) == 1
    assert github.pulls[0]["body"].endswith("- v2")
    assert github.files["somlier/inference_boston"]["dags/inference_boston.py"].endswith("# v2\n")


def test_a_dag_id_already_on_the_base_branch_is_refused(github):
    github.files["main"]["dags/taken.py"] = "# someone else's\n"
    with pytest.raises(DagIdTakenError, match="'taken' is already used on main"):
        publisher(github).publish("taken", SOURCE, "")
    assert set(github.branches) == {"main"} and github.pulls == []


def test_a_dag_id_claimed_by_another_open_pull_request_is_refused(github):
    github.branches["feature/x"] = "c1"
    github.files["feature/x"] = {**github.files["main"], "dags/claimed.py": "# other\n"}
    github.pulls.append({"number": 1, "state": "open", "title": "x", "body": "", "head": "feature/x", "base": "main"})
    with pytest.raises(DagIdTakenError, match="open pull request #1"):
        publisher(github).publish("claimed", SOURCE, "")
    assert "somlier/claimed" not in github.branches


@pytest.mark.parametrize(
    "fail, status, match",
    [
        (("POST", "/pulls"), 422, "refused the request as invalid.*\\(422 while opening a pull request"),
        (("PUT", "/contents/dags/d.py"), 403, "may not write to mlops/dags.*\\(403 while writing dags/d.py"),
        (("POST", "/pulls"), 429, "rate limit"),
    ],
)
def test_api_failures_explain_themselves_and_leave_no_branch(github, fail, status, match):
    github.fail[fail] = status
    with pytest.raises(PublishError, match=match) as caught:
        publisher(github).publish("d", SOURCE, "")
    assert github.token not in str(caught.value)
    assert set(github.branches) == {"main"}, "the half-made branch was not deleted"


def test_a_rejected_token_is_a_401_message_without_the_token(github):
    with pytest.raises(PublishError, match="token was rejected.*\\(401 while reading mlops/dags\\)") as caught:
        publisher(github, token="ghp_wrong_value").publish("d", SOURCE, "")
    assert "ghp_wrong_value" not in str(caught.value)


def test_an_unknown_repository_is_a_404_message(github):
    bad = GitHubPublisher(token=github.token, repository="mlops/nope", base_url=github.base_url, paced=False)
    with pytest.raises(PublishError, match="mlops/nope .*not found.*\\(404 while reading mlops/nope\\)"):
        bad.publish("d", SOURCE, "")


class EchoingGitHub(FakeGitHub):
    """GitHub answering errors with a message that quotes the request, Authorization header included."""

    def handle(self, method, path, query, body, auth):
        status, payload = super().handle(method, path, query, body, auth)
        if status >= 400 and isinstance(payload, dict):
            payload = {**payload, "message": f"{payload['message']} for {method} {path} with Authorization: {auth}"}
        return status, payload


@pytest.mark.parametrize(
    "fail, status, says",
    [
        (None, 401, "check GITHUB_PERSONAL_ACCESS_TOKEN"),
        (("PUT", "/contents/dags/d.py"), 403, "needs the 'repo' scope"),
        (("GET", "/branches/main"), 404, "check SOMLIER_DAGS_REPO, SOMLIER_DAGS_BASE_BRANCH"),
        (("PUT", "/contents/dags/d.py"), 409, "run the command again"),
        (("POST", "/git/refs"), 422, "check that base branch main exists"),
        (("POST", "/pulls"), 500, "GitHub failed on its side"),
        (("POST", "/pulls"), 502, "GitHub failed on its side"),
        (("POST", "/pulls"), 418, "check SOMLIER_GITHUB_BASE_URL"),
    ],
)
def test_every_status_says_what_to_fix_and_never_shows_the_token_github_echoes(fail, status, says):
    with EchoingGitHub(token="ghp_echoedSecret0123456789") as github:
        token = github.token if fail else "gho_wrongButSecret987"
        if fail:
            github.fail[fail] = status
        with pytest.raises(PublishError) as caught:
            publisher(github, token=token).publish("d", SOURCE, "")
    message = str(caught.value)
    assert says in message and f"({status} while" in message
    assert "Authorization: token ***" in message, "GitHub's echo is kept, with the token masked"
    assert token not in message and "ghp_" not in message and "gho_" not in message


def test_a_branch_that_cannot_be_deleted_after_a_failure_is_named(github):
    github.fail[("POST", "/pulls")] = 500
    github.fail[("DELETE", "/git/refs/heads/somlier/d")] = 500
    with pytest.raises(PublishError) as caught:
        publisher(github).publish("d", SOURCE, "")
    assert "the branch somlier/d this run created could not be deleted (500)" in str(caught.value)
    assert "somlier/d" in github.branches


def test_an_unreachable_github_names_the_url_to_check():
    with FakeGitHub() as github:
        base_url = github.base_url
    with pytest.raises(PublishError, match="could not be reached while reading mlops/dags .*SOMLIER_GITHUB_BASE_URL"):
        GitHubPublisher(token="ghp_x1234", repository="mlops/dags", base_url=base_url, paced=False).publish("d", SOURCE, "")
