"""The test run's network guard: nothing beyond loopback in any process, every attempt logged, and the run fails on
any attempt that no test expected, whatever the other tests running beside it do."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NONET = ROOT / "tests" / "nonet"


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


def test_offline_attempts_lists_those_of_the_processes_the_test_started(offline_attempts):
    code = "import socket\ntry:\n socket.getaddrinfo('example.org', 443)\nexcept OSError:\n print('refused')"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)  # this run's env
    assert child.stdout.strip() == "refused"
    assert [attempt.split(": ", 1)[1] for attempt in offline_attempts()] == ["name lookup of example.org"]


# Two tests for an inner run on two workers: the first expects refused attempts and holds its fixture open until
# the second, on the other worker, has tried a connection of its own.
EXPECTING = '''
import socket, time
from pathlib import Path


def wait_for(name):
    stop = time.monotonic() + 60
    while not (Path(__file__).parent / name).exists():
        assert time.monotonic() < stop, f"no {name}: the two tests did not run side by side"
        time.sleep(0.05)


def try_connection(host):
    try:
        socket.create_connection((host, 80), timeout=2)
    except OSError:
        pass


def test_expects_its_own_attempt(offline_attempts):
    (Path(__file__).parent / "fixture-open").touch()
    try_connection("192.0.2.1")
    wait_for("other-tried")
    assert [attempt.split(": ", 1)[1] for attempt in offline_attempts()] == ["name lookup of 192.0.2.1"]
'''
TRYING = '''
from test_expecting import try_connection, wait_for
from pathlib import Path


def test_tries_while_the_other_expects():
    wait_for("fixture-open")
    try_connection("198.51.100.7")
    (Path(__file__).parent / "other-tried").touch()
'''


def test_an_attempt_on_one_worker_fails_the_run_while_another_workers_test_expects_its_own(tmp_path):
    (tmp_path / "test_expecting.py").write_text(EXPECTING)
    (tmp_path / "test_trying.py").write_text(TRYING)
    (tmp_path / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    env = {key: value for key, value in os.environ.items()
           if key not in ("CVKIT_STANDINS_ROOT", "CVKIT_NET_LOG_DIR", "CVKIT_NET_LOG", "PYTEST_CURRENT_TEST")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")])
    inner = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-p", "no:nbval", "-n", "2",
                            "--dist", "loadfile", "-q", "test_expecting.py", "test_trying.py"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert "2 passed" in inner.stdout, inner.stdout[-3000:] + inner.stderr[-3000:]
    assert inner.returncode == 1, inner.stdout[-3000:]
    unexpected = inner.stderr.split("Network attempts that no test expected", 1)[1]
    assert "test_trying.py::test_tries_while_the_other_expects): name lookup of 198.51.100.7" in unexpected
    assert "192.0.2.1" not in unexpected
