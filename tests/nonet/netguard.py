"""Refuse, and log to $CVKIT_NET_LOG, any connection or name lookup beyond this machine.

Imported by every Python process of the test run: pytest through conftest.py, nbval's kernels through the
sitecustomize.py beside it (on PYTHONPATH). The session fails if the log is not empty.
"""

import os
import socket

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "::1", "0.0.0.0", ""}
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).lower()
    return host in _LOCAL_NAMES or host.startswith("127.") or host.startswith("::ffff:127.")


def _refuse(what: str) -> None:
    log = os.environ.get("CVKIT_NET_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"pid {os.getpid()}: {what}\n")
    raise OSError(f"network access blocked by the test run: {what}")


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


if os.environ.get("CVKIT_NET_LOG"):
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    socket.getaddrinfo = _guarded_getaddrinfo
