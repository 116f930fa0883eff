"""The `somlier` CLI as users run it: a real subprocess, real git, Airflow's DagBag."""

from __future__ import annotations

import ast
import shlex
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


def test_rendering_is_deterministic():
    first = somlier(*OFFLINE_ARGS, "--start_date", "2026-11-22", "--dry_run", "--local_repo", "/x", check=True)
    second = somlier(*OFFLINE_ARGS, "--start_date", "2026-11-22", "--dry_run", "--local_repo", "/x", check=True)
    assert first.stdout == second.stdout


HOSTILE = ['"); import os; ("', "x'\nimport os\n'", "{{ 7*7 }}", "a\\", "''' \"\"\"", "\r\nprint(1)#"]


def _strings(source: str) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _calls(source: str) -> set[str]:
    tree = ast.parse(source)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            names.add(ast.unparse(node.func))
        assert not isinstance(node, (ast.Import, ast.ImportFrom)) or node.col_offset == 0
    imports = {ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))}
    return names | imports


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("position", range(2, 8))
def test_hostile_offline_values_are_rejected_or_inert(hostile, position):
    args = list(OFFLINE_ARGS)
    args[position] = hostile
    done = somlier(*args, "--start_date", "2026-11-22", "--dry_run", "--local_repo", "/x")
    if done.returncode == 0:
        assert hostile.strip() in _strings(done.stdout)
        assert _calls(done.stdout) == _calls((GOLDEN / "offline_v2.py").read_text())
    else:
        assert done.returncode == 2 and "error:" in done.stderr


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("position", range(2, 6))
def test_hostile_batch_values_are_rejected_or_inert(hostile, position):
    args = list(BATCH_ARGS)
    args[position] = hostile
    done = somlier(*args, "--start_date", "2026-11-22", "--dry_run", "--local_repo", "/x")
    if done.returncode == 0:
        assert set(shlex.split(hostile)) <= _strings(done.stdout) if position == 4 else hostile.strip() in _strings(done.stdout)
        golden_calls = _calls(somlier(*BATCH_ARGS, "--start_date", "2026-11-22", "--dry_run", "--local_repo", "/x").stdout)
        assert _calls(done.stdout) == golden_calls
    else:
        assert done.returncode == 2 and "error:" in done.stderr


@pytest.mark.parametrize(
    "position, value, message",
    [
        (3, "bad dag id!", "DAG_ID 'bad dag id!' is invalid"),
        (4, "0 9 * *", "SCHEDULE '0 9 * *' is invalid"),
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
    ("--dataset_load_window", "-1", "got '-1'"), ("--start_date", "22/11/2026", "START_DATE '22/11/2026'"),
    ("--dataset_load_by_kst", "maybe", "'maybe'"),
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
