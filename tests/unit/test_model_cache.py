"""The host's model cache: one download per version, never half-written, bounded, never pulled from under a task."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from airflow_provider_somlier.errors import InvalidArgumentError
from airflow_provider_somlier.model_cache import ModelCache, cache_settings

MB = 1024 * 1024


def _write_model(folder: Path, size: int = 1000, pause: float = 0.0) -> Path:
    model = folder / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    with open(model / "weights.bin", "wb") as weights:
        for _ in range(4):
            weights.write(os.urandom(size // 4))
            weights.flush()
            time.sleep(pause / 4)
    return model


def _get_in_child(root: str, entry: str, pause: float, results, hold: float = 0.0) -> None:
    cache = ModelCache(Path(root), 100 * MB)
    version = cache.get(entry, lambda folder: _write_model(folder, pause=pause), wait_seconds=30)
    results.put((os.getpid(), version.downloaded, str(version.path)))
    time.sleep(hold)


def test_concurrent_processes_download_a_version_once_and_never_see_it_half_written(tmp_path):
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    children = [ctx.Process(target=_get_in_child, args=(str(tmp_path), "m-v1-x", 1.0, results)) for _ in range(4)]
    for child in children:
        child.start()
    seen_partial = False
    while any(child.is_alive() for child in children):
        final = tmp_path / "m-v1-x"
        if final.exists() and not (final / ".complete").exists():
            seen_partial = True
        time.sleep(0.01)
    for child in children:
        child.join()
        assert child.exitcode == 0
    answers = [results.get(timeout=5) for _ in children]
    assert sum(downloaded for _, downloaded, _ in answers) == 1
    assert len({path for _, _, path in answers}) == 1
    assert not seen_partial
    assert (Path(answers[0][2]) / "weights.bin").stat().st_size == 1000
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".download-")] == []


def test_a_download_killed_midway_leaves_nothing_and_the_next_task_downloads_it(tmp_path):
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_get_in_child, args=(str(tmp_path), "m-v2-x", 5.0, ctx.Queue()))
    child.start()
    deadline = time.monotonic() + 10
    while not list(tmp_path.glob(".download-*/model/weights.bin")) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert not (tmp_path / "m-v2-x").exists()
    version = ModelCache(tmp_path, 100 * MB).get("m-v2-x", _write_model, wait_seconds=5)
    assert version.downloaded and (version.path / "weights.bin").stat().st_size == 1000


def test_the_least_recently_used_versions_go_first_but_never_one_in_use(tmp_path):
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    # another process loads "old" and keeps using it
    user = ctx.Process(target=_get_in_child, args=(str(tmp_path), "old", 0.0, results, 30.0))
    user.start()
    results.get(timeout=10)
    cache = ModelCache(tmp_path, 2500)  # room for two 1000-byte versions
    try:
        for entry in ("a", "b"):
            os.close(cache.get(entry, _write_model, wait_seconds=5).lock_fd)  # this process is done with it
            time.sleep(0.05)
        # "old" is the least recently used and over the bound, but in use: "a" went instead
        assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["b", "old"]
    finally:
        user.kill()
        user.join()
    cache.get("c", _write_model, wait_seconds=5)  # "old" is free now and goes
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["b", "c"]


def test_entry_names_are_safe_and_tell_registries_and_sources_apart(tmp_path):
    cache = ModelCache(tmp_path, MB)
    one = cache.entry_name(registry_uri="sqlite:///a.db", name="../../etc/passwd", version="1", source="s3://x")
    assert "/" not in one and one.startswith("_.._etc_passwd-v1-")  # no path, not hidden
    other = cache.entry_name(registry_uri="sqlite:///b.db", name="../../etc/passwd", version="1", source="s3://x")
    assert one != other


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf"])
def test_a_bad_cache_size_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("AIRFLOW__SOMLIER__MODEL_CACHE_MAX_GB", value)
    with pytest.raises(InvalidArgumentError, match=rf"model_cache_max_gb is '{value}'; expected a number of GB >= 0"):
        cache_settings()


def test_the_cache_folder_follows_the_airflow_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__SOMLIER__MODEL_CACHE_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("AIRFLOW__SOMLIER__MODEL_CACHE_MAX_GB", "0.5")
    assert cache_settings() == (tmp_path / "models", 512 * MB)
