"""The host's model cache: one download per version, never half-written, bounded, never pulled from under a task."""

from __future__ import annotations

import errno
import fcntl
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from airflow_provider_somlier.errors import InvalidArgumentError
from airflow_provider_somlier.model_cache import ModelCache, ModelCacheUnusableError, cache_settings

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


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "1e300", "1e-12"])
def test_a_bad_cache_size_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("AIRFLOW__SOMLIER__MODEL_CACHE_MAX_GB", value)
    with pytest.raises(InvalidArgumentError, match=rf"model_cache_max_gb is '{value}'; expected a number of GB >= 0"):
        cache_settings()


def test_the_cache_folder_follows_the_airflow_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__SOMLIER__MODEL_CACHE_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("AIRFLOW__SOMLIER__MODEL_CACHE_MAX_GB", "0.5")
    assert cache_settings() == (tmp_path / "models", 512 * MB)


@pytest.mark.parametrize("damage", ["truncate", "remove"])
def test_a_damaged_version_is_not_served_but_downloaded_again(tmp_path, damage):
    cache = ModelCache(tmp_path, 100 * MB)
    first = cache.get("m-v1-x", _write_model, wait_seconds=5)
    os.close(first.lock_fd)
    weights = first.path / "weights.bin"
    if damage == "truncate":
        os.truncate(weights, 100)
    else:
        weights.unlink()
    again = cache.get("m-v1-x", _write_model, wait_seconds=5)
    assert again.downloaded and (again.path / "weights.bin").stat().st_size == 1000


def test_a_version_that_failed_to_load_is_discarded_and_downloaded_again(tmp_path):
    """Same size, bad bytes: only loading can tell; the hook then discards the entry and downloads it."""
    cache = ModelCache(tmp_path, 100 * MB)
    first = cache.get("m-v1-x", _write_model, wait_seconds=5)
    (first.path / "weights.bin").write_bytes(b"\0" * 1000)
    assert not cache.get("m-v1-x", _write_model, wait_seconds=5).downloaded  # the size still adds up
    cache.discard("m-v1-x")
    again = cache.get("m-v1-x", _write_model, wait_seconds=5)
    assert again.downloaded and (again.path / "weights.bin").read_bytes() != b"\0" * 1000


def _download_then_hold(root: str, results) -> None:
    cache = ModelCache(Path(root), 100 * MB)
    version = cache.get("m-v1-x", lambda folder: _write_model(folder, pause=1.0), wait_seconds=30)
    results.put(("winner", version.downloaded))
    time.sleep(30)  # a long task still using the version


def test_a_waiter_takes_the_version_as_soon_as_it_is_complete_not_when_the_downloader_ends(tmp_path):
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    winner = ctx.Process(target=_download_then_hold, args=(str(tmp_path), results))
    winner.start()
    try:
        deadline = time.monotonic() + 10
        while not list(tmp_path.glob(".download-*")) and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        version = ModelCache(tmp_path, 100 * MB).get("m-v1-x", _write_model, wait_seconds=25)
        assert not version.downloaded and time.monotonic() - started < 20  # the winner's task holds it 30 s
        assert results.get(timeout=5) == ("winner", True)
    finally:
        winner.kill()
        winner.join()


def test_eviction_leaves_a_download_in_progress_alone_and_removes_an_abandoned_one(tmp_path):
    cache = ModelCache(tmp_path, 0)
    busy = tmp_path / ".download-m-v9-x-0000abcd"
    busy.mkdir()
    (busy / ".complete").write_text("10")  # written just before its rename into place
    downloading = os.open(tmp_path / "m-v9-x.dl", os.O_RDWR | os.O_CREAT)
    fcntl.flock(downloading, fcntl.LOCK_EX)
    try:
        assert cache.evict() == [] and busy.exists()
    finally:
        os.close(downloading)  # its process died
    cache.evict()
    assert not busy.exists()


def test_a_full_disk_evicts_unused_versions_and_downloads_once_more(tmp_path):
    cache = ModelCache(tmp_path, 100 * MB)
    for entry in ("old-a", "old-b"):
        os.close(cache.get(entry, _write_model, wait_seconds=5).lock_fd)
    attempts = []

    def download(folder: Path) -> Path:
        attempts.append(folder)
        if len(attempts) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return _write_model(folder)

    version = cache.get("new", download, wait_seconds=5)
    assert version.downloaded and len(attempts) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["new"]


def test_a_file_where_the_cache_folder_should_be_is_named(tmp_path):
    (tmp_path / "cache").write_text("not a folder")
    with pytest.raises(ModelCacheUnusableError, match="the model cache at .*cache cannot be used by this process"):
        ModelCache(tmp_path / "cache", MB).get("m-v1-x", _write_model, wait_seconds=5)


def test_a_waiter_looks_for_the_finished_version_while_the_download_lock_is_still_held(tmp_path):
    """Whoever holds the download lock and for however long, a waiter stops waiting once the version is whole."""
    import concurrent.futures

    cache = ModelCache(tmp_path, 100 * MB)
    holder = os.open(tmp_path / "m-v1-x.dl", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a downloader that keeps it
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(cache.get, "m-v1-x", _write_model, wait_seconds=60)
            time.sleep(0.5)
            assert not waiting.done()
            cache._download(tmp_path / "m-v1-x", _write_model)  # the downloader's copy lands
            version = waiting.result(timeout=20)  # the lock is never freed: only looking finds it
        assert not version.downloaded and (version.path / "weights.bin").stat().st_size == 1000
    finally:
        os.close(holder)
