"""The emulator helper's command line: a busy port is named in one line, nothing is started."""

from __future__ import annotations

import socket

from airflow_provider_somlier.devtools import emulator


def test_a_busy_port_is_named_and_nothing_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(emulator, "STATE_FILE", tmp_path / "bqemulator.json")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        code = emulator.main(["start", "--rest-port", str(busy), "--grpc-port", str(emulator.free_port()),
                              "--data-dir", str(tmp_path / "data")])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"bqemulator: port {busy} (--rest-port) is in use; stop what holds it or choose another with --rest-port N"
    )
    assert not (tmp_path / "bqemulator.json").exists() and not (tmp_path / "data").exists()

