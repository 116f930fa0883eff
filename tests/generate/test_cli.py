"""The `somlier` CLI as users run it: a real subprocess, real git, Airflow's DagBag."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from airflow_provider_somlier.cli import main

from tests.github_server import FakeGitHub

GOLDEN = Path(__file__).parent / "golden"
OFFLINE_ARGS = [
    "offline", "create_v2", "boston-house-pricing/2", "inference_boston_house_price", "0 9 * * *",
    "temp_serena.boston_house_pricing_feature_set", "date", "temp_serena.boston_house_pricing_result",
]
BATCH_ARGS = ["batch", "create", "gcr.io/socar-data-dev/sift:latest", "0 0 * * *", "sh -c predict.sh", "sift_batch"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def somlier(*args: str, env: dict | None = None, check: bool = False) -> Result:
    """Run the CLI in-process with click's runner (the same entry point as the console script)."""
    runner = CliRunner()
    result = runner.invoke(main, list(args), env={"SOMLIER_CONFIG": "/nonexistent", **(env or {})}, catch_exceptions=False)
    done = Result(result.exit_code, result.stdout, result.stderr)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_the_console_script_runs_as_a_real_process():
    done = subprocess.run([sys.executable, "-m", "airflow_provider_somlier.cli", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "offline" in done.stdout


@pytest.fixture
def dags_repo(tmp_path) -> Path:
    repo = tmp_path / "dags-repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    return repo


def test_offline_dry_run_matches_the_golden_file_and_touches_nothing(dags_repo):
    done = somlier(*OFFLINE_ARGS, "ghp_secret_token_123", "--start_date", "2026-11-22", "--dry_run",
                   "--local_repo", str(dags_repo), check=True)
    assert done.stdout == (GOLDEN / "offline_v2.py").read_text()
    assert "ghp_secret_token_123" not in done.stdout + done.stderr
    assert "would lint the file, then commit dags/inference_boston_house_price.py" in done.stderr
    assert not (dags_repo / "dags").exists()


def test_batch_dry_run_matches_the_golden_file():
    done = somlier(*BATCH_ARGS, "--start_date", "2026-11-22", "--cpu", "500m", "--memory", "1Gi",
                   "--env", "MODE=daily", "--dry_run", "--local_repo", "/tmp/unused", check=True)
    assert done.stdout == (GOLDEN / "batch_kpo.py").read_text()


def test_a_variable_given_twice_is_refused_by_name():
    done = somlier(*BATCH_ARGS, "--env", "MODE=daily", "--env", "MODE=hourly", "--dry_run", "--local_repo", "/x")
    assert done.returncode == 2
    assert "--env 'MODE' is given twice" in done.stderr


def test_rendering_is_deterministic():
    first = somlier(*OFFLINE_ARGS, "--start_date", "2026-11-22", "--dry_run", "--local_repo", "/x", check=True)
    second = somlier(*OFFLINE_ARGS, "--start_date", "2026-11-22", "--dry_run", "--local_repo", "/x", check=True)
    assert first.stdout == second.stdout


@pytest.mark.parametrize(
    "position, value, message",
    [
        (3, "bad dag id!", "DAG_ID 'bad dag id!' is invalid"),
        (4, "0 9 * *", "SCHEDULE_INTERVAL '0 9 * *' is invalid"),
        (4, "0 9 31 2 *", "SCHEDULE_INTERVAL '0 9 31 2 *' never matches a date"),
        (2, "boston/latest", "'latest'"),
        (5, "no_dataset_here", "DATASET_REF 'no_dataset_here' is malformed"),
        (6, "date; drop", "DATASET_LOAD_COLUMN 'date; drop'"),
    ],
)
def test_bad_inputs_exit_2_with_the_field_named(position, value, message):
    args = list(OFFLINE_ARGS)
    args[position] = value
    done = somlier(*args, "--dry_run", "--local_repo", "/x")
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.parametrize("flag, value, message", [
    ("--dataset_load_window", "-1", "got '-1'"), ("--start_date", "22/11/2026", "--start_date '22/11/2026'"),
    ("--dataset_load_by_kst", "maybe", "'maybe'"),
    ("--shards", "", "--shards '' is invalid: expected a whole number from 1 to"),
    ("--shards", "  ", "--shards '' is invalid: expected a whole number from 1 to"),
    ("--quality_checks", '{"max_psy": 0.2}', "unknown quality check(s) 'max_psy'"),
    ("--quality_checks", "{oops", "is not JSON"), ("--quality_checks", '{"max_psi": -1}', "max_psi must be a number"),
    ("--baseline", "previous_days:0", "'previous_days:0'"), ("--on_quality_failure", "ignore", "'ignore'"),
    ("--null_features", "yes", "--null_features 'yes' is not one of auto, refuse, pass"),
])
def test_bad_flags_exit_2(flag, value, message):
    done = somlier(*OFFLINE_ARGS, flag, value, "--dry_run", "--local_repo", "/x")
    assert done.returncode == 2 and message in done.stderr


@pytest.mark.parametrize("image, entrypoint, message", [
    ("Not An Image", "make predict", "DOCKER_IMAGE 'Not An Image'"),
    ("gcr.io/p/sift:latest", "sh -c 'unclosed", "cannot be split"),
    ("gcr.io/p/sift:latest", "   ", "ENTRYPOINT is empty"),
])
def test_bad_batch_inputs_exit_2(image, entrypoint, message):
    done = somlier("batch", "create", image, "0 0 * * *", entrypoint, "sift", "--dry_run", "--local_repo", "/x")
    assert done.returncode == 2 and message in done.stderr


def test_help_on_every_level():
    for args in ([], ["offline"], ["offline", "create_v2"], ["batch"], ["batch", "create"]):
        done = somlier(*args, "--help", check=True)
        assert "Usage:" in done.stdout


def test_publishing_locally_lints_and_commits_the_dag(dags_repo):
    somlier(*OFFLINE_ARGS, "--start_date", "2026-11-22", "--local_repo", str(dags_repo), check=True)
    log = subprocess.run(["git", "-C", str(dags_repo), "log", "--format=%s"], capture_output=True, text=True).stdout
    assert log.strip() == "Add DAG inference_boston_house_price"
    assert (dags_repo / "dags" / "inference_boston_house_price.py").read_text() == (GOLDEN / "offline_v2.py").read_text()
    again = somlier(*OFFLINE_ARGS, "--start_date", "2026-11-22", "--local_repo", str(dags_repo), check=True)
    assert again.stdout.startswith("unchanged:")


def test_batch_publishing_builds_the_pod_spec_offline(dags_repo):
    done = somlier(*BATCH_ARGS, "--start_date", "2026-11-22", "--local_repo", str(dags_repo), check=True)
    assert done.stdout.startswith("created:")


def test_the_token_from_the_environment_opens_a_pull_request_and_is_never_printed():
    with FakeGitHub() as github:
        env = {
            "GITHUB_PERSONAL_ACCESS_TOKEN": github.token,
            "SOMLIER_DAGS_REPO": "mlops/dags",
            "SOMLIER_GITHUB_BASE_URL": github.base_url,
        }
        done = somlier(*OFFLINE_ARGS, "-", "--start_date", "2026-11-22", env=env, check=True)
        assert done.stdout.strip() == "created: https://github.example/mlops/dags/pull/1"
        assert github.token not in done.stdout + done.stderr
        committed = github.files["somlier/inference_boston_house_price"]["dags/inference_boston_house_price.py"]
        assert github.token not in committed
        bad = somlier(*OFFLINE_ARGS, "ghp_wrong", "--start_date", "2026-11-22", env=env)
        assert bad.returncode == 1 and "401" in bad.stderr and "ghp_wrong" not in bad.stderr


def test_dry_run_without_a_repository_prints_the_file_and_says_what_publishing_needs():
    done = somlier(*OFFLINE_ARGS, "--start_date", "2026-11-22", "--dry_run", check=True)
    assert done.stdout == (GOLDEN / "offline_v2.py").read_text()
    assert "needs a dags repository" in done.stderr and "SOMLIER_DAGS_REPO" in done.stderr


def test_publishing_without_a_repository_exits_2_saying_what_to_set():
    done = somlier(*OFFLINE_ARGS, "--start_date", "2026-11-22")
    assert done.returncode == 2 and "no dags repository: set SOMLIER_DAGS_REPO" in done.stderr


TOKENS = ["ghp_" + "a1" * 18, "gho_" + "b2" * 18, "ghs_" + "c3" * 18, "ghu_" + "d4" * 18, "ghr_" + "e5" * 18,
          "github_pat_11ABCDEFG0" + "x" * 60, "0123456789abcdef0123456789abcdef01234567"]


@pytest.mark.parametrize("token", TOKENS)
def test_a_token_given_to_batch_create_as_an_extra_argument_is_masked(token):
    done = somlier(*BATCH_ARGS, token, "--dry_run")
    assert done.returncode == 2 and "unexpected extra argument (***)" in done.stderr
    assert token not in done.stdout + done.stderr


@pytest.mark.parametrize("token", TOKENS)
def test_a_token_that_slipped_into_a_value_position_is_masked(token):
    forgot_one = [*OFFLINE_ARGS[:-1], token]  # DESTINATION_TABLE_REF forgotten: the token takes its place
    done = somlier(*forgot_one, "--dry_run")
    assert done.returncode == 2 and "error: DESTINATION_TABLE_REF " in done.stderr
    assert token not in done.stderr


def test_the_configured_token_is_masked_whatever_its_shape():
    token = "plain-secret-value-42"
    done = somlier(*OFFLINE_ARGS[:-1], token, "--dry_run", env={"GITHUB_PERSONAL_ACCESS_TOKEN": token})
    assert done.returncode == 2 and token not in done.stderr and "'***'" in done.stderr


def test_a_token_github_echoes_is_masked_on_stderr():
    from tests.generate.test_publish_github import EchoingGitHub

    with EchoingGitHub() as github:
        github.fail[("POST", "/pulls")] = 422
        env = {"SOMLIER_DAGS_REPO": "mlops/dags", "SOMLIER_GITHUB_BASE_URL": github.base_url}
        done = somlier(*OFFLINE_ARGS, github.token, "--start_date", "2026-11-22", env=env)
    assert done.returncode == 1
    assert "Authorization: token ***" in done.stderr and github.token not in done.stderr


def test_a_bad_setting_is_named_and_a_token_in_it_masked():
    done = somlier(*OFFLINE_ARGS, "--dry_run", env={"SOMLIER_CHECK_AIRFLOW_TIMEOUT": "ghp_pastedHereByMistake1"})
    assert done.returncode == 2 and "check_airflow_timeout '***'" in done.stderr
    assert "pastedHereByMistake" not in done.stderr


def test_an_unexpected_error_prints_its_traceback_with_tokens_masked():
    from airflow_provider_somlier.cli.base import TokenSafeGroup

    group = TokenSafeGroup()

    @group.command()
    def boom() -> None:
        raise RuntimeError("GitHub said: Authorization: token ghp_leakedInATraceback99")

    done = CliRunner().invoke(group, ["boom"], catch_exceptions=False)
    assert done.exit_code == 1
    assert "Traceback" in done.stderr and "RuntimeError: GitHub said: Authorization: token ***" in done.stderr
    assert "leakedInATraceback" not in done.stderr


def test_a_token_that_is_not_printable_ascii_is_refused_without_being_shown():
    mangled = "ghp_abc\u00e9" + b"\xff".decode("utf-8", "surrogateescape")
    done = somlier(*OFFLINE_ARGS, mangled, "--start_date", "2026-11-22",
                   env={"SOMLIER_DAGS_REPO": "mlops/dags", "SOMLIER_GITHUB_BASE_URL": "http://127.0.0.1:9"})
    assert done.returncode == 2 and "copy it again from GitHub" in done.stderr
    assert "abc" not in done.stderr


@pytest.mark.parametrize("length", [245, 250])
def test_a_dag_id_of_the_longest_lengths_commits_locally(dags_repo, length):
    """A temporary name derived from ``<dag_id>.py`` would pass the file system's 255-byte limit."""
    dag_id = "d" * length
    args = [*OFFLINE_ARGS[:3], dag_id, *OFFLINE_ARGS[4:]]
    done = somlier(*args, "--start_date", "2026-11-22", "--local_repo", str(dags_repo))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("created:")
    assert sorted(p.name for p in (dags_repo / "dags").iterdir()) == [f"{dag_id}.py"]
    status = subprocess.run(["git", "-C", str(dags_repo), "status", "--porcelain"], capture_output=True, text=True)
    assert status.stdout == ""


@pytest.mark.parametrize("command", ["offline", "batch"])
def test_a_continuous_schedule_renders_one_active_run_and_passes_the_lint(dags_repo, command):
    """Airflow's ContinuousTimetable refuses max_active_runs above 1; the real DagBag lint says so."""
    if command == "offline":
        args = [*OFFLINE_ARGS[:4], "@continuous", *OFFLINE_ARGS[5:]]
    else:
        args = [*BATCH_ARGS[:3], "@continuous", *BATCH_ARGS[4:]]
    done = somlier(*args, "--start_date", "2026-11-22", "--local_repo", str(dags_repo))
    assert done.returncode == 0, done.stderr
    dag_id = args[3] if command == "offline" else args[5]
    source = (dags_repo / "dags" / f"{dag_id}.py").read_text()
    assert "schedule='@continuous'" in source and "max_active_runs=1," in source


def test_an_empty_shard_count_exits_2_and_commits_nothing(dags_repo):
    """``--shards "$N"`` with N unset must not quietly render the single-task DAG."""
    done = somlier(*OFFLINE_ARGS, "--shards", "", "--start_date", "2026-11-22", "--local_repo", str(dags_repo))
    assert done.returncode == 2 and "--shards ''" in done.stderr
    assert not (dags_repo / "dags").exists()


def test_a_local_repo_gets_the_dag_committed_regenerated_and_never_someone_else_s_file_replaced(dags_repo):
    """A file SoMLier generated is updated in place; a hand-written DAG under the same name is refused."""
    def log() -> list[str]:
        done = subprocess.run(["git", "-C", str(dags_repo), "log", "--format=%s"], capture_output=True, text=True)
        return done.stdout.split("\n")[:-1]

    first = somlier(*BATCH_ARGS, "--start_date", "2026-11-22", "--local_repo", str(dags_repo), check=True)
    assert first.stdout.startswith("created: ") and log() == ["Add DAG sift_batch"]
    again = somlier(*BATCH_ARGS, "--start_date", "2026-11-23", "--local_repo", str(dags_repo), check=True)
    assert again.stdout.startswith("updated: ") and log() == ["Update DAG sift_batch", "Add DAG sift_batch"]

    mine = dags_repo / "dags" / "mine.py"
    mine.write_text('print("my own dag")\n')
    subprocess.run(["git", "-C", str(dags_repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(dags_repo), "-c", "user.name=me", "-c", "user.email=me@localhost",
                    "commit", "-qm", "my own DAG"], check=True)
    refused = somlier(*BATCH_ARGS[:-1], "mine", "--local_repo", str(dags_repo))
    assert refused.returncode != 0
    assert "dag_id 'mine' is taken" in refused.stderr and "was not generated by SoMLier" in refused.stderr
    assert mine.read_text() == 'print("my own dag")\n' and log()[0] == "my own DAG"


def test_a_local_repo_that_cannot_take_the_file_is_refused_before_the_lint(tmp_path):
    missing = somlier(*BATCH_ARGS, "--local_repo", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "does not exist: expected the folder of a git work tree" in missing.stderr
    assert "linting" not in missing.stderr
    plain = somlier(*BATCH_ARGS, "--local_repo", str(tmp_path))
    assert plain.returncode == 2 and "is not a git repository (run `git init` there first" in plain.stderr


def test_an_unreachable_airflow_says_the_dag_was_committed_and_which_setting_names_the_api(dags_repo):
    done = somlier(*BATCH_ARGS, "--local_repo", str(dags_repo), "--check_airflow",
                   env={"SOMLIER_AIRFLOW_API_URL": "http://127.0.0.1:9"})
    assert done.returncode != 0 and (dags_repo / "dags" / "sift_batch.py").exists()
    assert "is unreachable" in done.stderr and "the DAG file was created all the same" in done.stderr
    assert "SOMLIER_AIRFLOW_API_URL" in done.stderr
