"""Network helpers of `EdgeServer`: loopback checks, free ports, polling without a proxy, and
the tail of a log file."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import urllib.request
from pathlib import Path

LOG_TAIL_LINES = 30

# No proxy for loopback polling: an http_proxy in the environment must not swallow 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine.

    Args:
        host: A host name or IP address (IPv6 may be bracketed).

    Returns:
        True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); False otherwise,
        including wildcards (0.0.0.0, ::) and other host names.
    """
    if host.strip().lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now.

    The probe sets ``SO_REUSEADDR`` like uvicorn does, so a port in TIME_WAIT counts as free and
    a port with a listener counts as taken.
    """
    bind_host = "127.0.0.1" if host == "localhost" else host.strip("[]")
    with socket.socket(_family(bind_host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind_host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def find_free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free on ``host`` (another process may still take it first)."""
    bind_host = "127.0.0.1" if host == "localhost" else host.strip("[]")
    with socket.socket(_family(bind_host), socket.SOCK_STREAM) as sock:
        sock.bind((bind_host, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if path is None or not path.is_file():
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 64 * 1024))
        text = fh.read().decode("utf-8", errors="replace")
    return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])
