"""Start `langgraph dev` (the in-memory LangGraph Server) for a test and talk JSON to it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, payload: dict, timeout: float = 300) -> Any:
    """POST ``payload`` as JSON; the decoded JSON answer."""
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    return json.loads(urllib.request.urlopen(req, timeout=timeout).read())


def get(url: str, timeout: float = 60) -> Any:
    """GET ``url``; the decoded JSON answer."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


@contextlib.contextmanager
def langgraph_dev(
    config_dir: Path, env: Mapping[str, str], log_path: Path, startup_s: float = 180
) -> Iterator[str]:
    """Serve the ``langgraph.json`` in ``config_dir`` (also the working directory: graph paths
    resolve from it) on a free loopback port; yields the base URL, stops the server on exit.

    Skips when langgraph-cli is not installed; fails with the log's tail when it does not start.
    """
    cli = shutil.which("langgraph", path=str(Path(sys.executable).parent))
    if cli is None:
        pytest.skip("langgraph-cli is not installed (pip install 'langgraph-cli[inmem]')")
    port = free_port()
    cmd = [cli, "dev", "--config", "langgraph.json", "--no-browser", "--no-reload"]
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*cmd, "--host", "127.0.0.1", "--port", str(port)],
            cwd=config_dir,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + startup_s
            while True:
                try:
                    urllib.request.urlopen(f"{base}/ok", timeout=5)
                    break
                except OSError:
                    if proc.poll() is not None or time.time() > deadline:
                        pytest.fail(f"langgraph dev did not start: {log_path.read_text()[-3000:]}")
                    time.sleep(0.5)
            yield base
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
                proc.wait(timeout=30)
