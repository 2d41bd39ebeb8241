"""Refuse, and log, any connection or name lookup beyond this machine.

Imported by every Python process of the test run: pytest through conftest.py, its workers, nbval's kernels and
subprocesses through the sitecustomize.py beside it (on PYTHONPATH). Each process appends to its own file in
$CVKIT_NET_LOG_DIR, one JSON line per attempt naming the test that was running ($PYTEST_CURRENT_TEST, which
subprocesses inherit); nothing is ever rewritten. A test that expects attempts says so (`expect_attempts`, through
conftest's `offline_attempts` fixture) and reads only its own; every other attempt fails the run.
Where $CVKIT_NET_LOG names a file instead (a test watching one child process), attempts go there as `pid N: what`.
"""

import json
import os
import socket
import time
from pathlib import Path

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "::1", "0.0.0.0", ""}
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).lower()
    return host in _LOCAL_NAMES or host.startswith("127.") or host.startswith("::ffff:127.")


def _current_test() -> str | None:
    running = os.environ.get("PYTEST_CURRENT_TEST")  # "path::name (setup|call|teardown)"
    return running.rsplit(" (", 1)[0] if running else None


def _append(record: dict) -> None:
    with open(Path(os.environ["CVKIT_NET_LOG_DIR"]) / f"{os.getpid()}.log", "a", encoding="utf-8") as log:
        log.write(json.dumps({"pid": os.getpid(), "time": time.time(), **record}) + "\n")


def _refuse(what: str) -> None:
    if os.environ.get("CVKIT_NET_LOG"):
        with open(os.environ["CVKIT_NET_LOG"], "a", encoding="utf-8") as log:
            log.write(f"pid {os.getpid()}: {what}\n")
    elif os.environ.get("CVKIT_NET_LOG_DIR"):
        _append({"test": _current_test(), "attempt": what})
    raise OSError(f"network access blocked by the test run: {what}")


def _record(line: str) -> dict:
    try:
        return json.loads(line)
    except ValueError:  # never dropped: an unreadable line counts as an attempt outside any test
        return {"pid": "?", "time": 0.0, "test": None, "attempt": f"unreadable log line {line!r}"}


def _records(folder: Path) -> list[dict]:
    lines = [line for log in Path(folder).glob("*.log") for line in log.read_text(encoding="utf-8").splitlines()]
    return sorted((_record(line) for line in lines if line), key=lambda record: record["time"])


def expect_attempts(test: str) -> None:
    """Record that `test` (a pytest node id) expects refused attempts: the run does not count them as a failure."""
    _append({"test": test, "expects": True})


def attempts_of(test: str) -> list[str]:
    """The attempts made while `test` ran, by any process of the run, as `pid N: what`, oldest first."""
    return [f"pid {r['pid']}: {r['attempt']}" for r in _records(Path(os.environ["CVKIT_NET_LOG_DIR"]))
            if "attempt" in r and r["test"] == test]


def unexpected_attempts(folder: Path) -> list[str]:
    """Every attempt logged under `folder` outside the tests that expect some, as `pid N (test): what`."""
    records = _records(folder)
    expected = {r["test"] for r in records if r.get("expects")}
    return [f"pid {r['pid']} ({r['test'] or 'outside any test'}): {r['attempt']}"
            for r in records if "attempt" in r and r["test"] not in expected]


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        _refuse(f"connect to {address[0]}:{address[1]}")
    return _connect(self, address)


def _guarded_connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        _refuse(f"connect to {address[0]}:{address[1]}")
    return _connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    if host is not None and not _is_local(host):
        try:
            _refuse(f"name lookup of {host}")
        except OSError as err:
            raise socket.gaierror(socket.EAI_NONAME, str(err)) from None
    return _getaddrinfo(host, *args, **kwargs)


def guard() -> None:
    """Put the guard in place in this process (once)."""
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    socket.getaddrinfo = _guarded_getaddrinfo


if os.environ.get("CVKIT_NET_LOG_DIR") or os.environ.get("CVKIT_NET_LOG"):
    guard()
