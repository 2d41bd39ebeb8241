"""The test run's network guard: nothing beyond loopback, in every process, and every attempt is logged."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

NONET = Path(__file__).resolve().parent / "nonet"


def _child(code: str, log: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(NONET), CVKIT_NET_LOG=str(log))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_child_process_cannot_connect_beyond_loopback_and_the_attempt_is_logged(tmp_path):
    log = tmp_path / "net.log"
    result = _child("import socket\ntry:\n socket.create_connection(('192.0.2.1', 80), timeout=2)\n"
                    "except OSError as e:\n print('refused:', e)", log)
    assert "refused:" in result.stdout and "network access blocked" in result.stdout
    assert "192.0.2.1" in log.read_text()


def test_child_process_cannot_resolve_outside_names(tmp_path):
    log = tmp_path / "net.log"
    result = _child("import socket\ntry:\n socket.getaddrinfo('huggingface.co', 443)\n"
                    "except socket.gaierror as e:\n print('no name')", log)
    assert result.stdout.strip() == "no name" and "huggingface.co" in log.read_text()


def test_loopback_connections_still_work(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    log = tmp_path / "net.log"
    result = _child(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5).close()\nprint('ok')", log)
    server.close()
    assert result.stdout.strip() == "ok" and not log.exists()


def test_this_test_run_is_guarded_too():
    assert socket.socket.connect.__name__ == "_guarded_connect"
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["YOLO_OFFLINE"] == "1"
