"""The `hera` CLI: bad input is one clear error line; `hera run` prints its table and JSONL.

`hera run` is exercised here with the edge at a closed loopback port (a real OpenAI client that
cannot connect): every edge step fails over to the expert stand-in, recorded, and the run still
finishes. The real-edge run is in the integration tests.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from langgraph_hera.cli import main

pytest.importorskip("textworld_express")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--policy", "nope"], "unknown policy 'nope'"),
        (["run", "--suite", "zork"], "unknown suite 'zork'"),
        (["run", "--episodes", "0"], "--episodes must be >= 1, got 0"),
        (["run", "--policy-arg", "p"], "--policy-arg must look like key=value, got 'p'"),
        (["run", "--edge-url", "http://127.0.0.1:1/v1"], "--edge-model is required"),
        (["run", "--max-steps", "0"], "--max-steps must be >= 1, got 0"),
        (["run", "--epsilon", "1.5"], "--epsilon must be in [0, 1], got 1.5"),
    ],
)
def test_bad_input_is_one_error_line(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hera: error: ") and message in err[0]


def test_run_with_dead_edge_fails_over_and_prints_the_table(tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "run"
    argv = [
        "run", "--episodes", "2", "--policy", "always-edge", "--max-steps", "25",
        "--edge-url", f"http://127.0.0.1:{_closed_port()}/v1", "--edge-model", "m",
        "--edge-timeout", "2", "--out", str(out_dir),
    ]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "expert stand-in" in captured.out and "cloud-step share" in captured.out
    episodes = [json.loads(line) for line in (out_dir / "episodes.jsonl").read_text().splitlines()]
    steps = [json.loads(line) for line in (out_dir / "steps.jsonl").read_text().splitlines()]
    assert len(episodes) == 2 and all(e["success"] for e in episodes)
    assert all(e["cloud_is_stand_in"] for e in episodes)
    # Every step went to the cloud because the edge failed, and each failure is on record.
    assert steps and all(s["target"] == "cloud" for s in steps)
    assert all(s["cloud"] == "expert stand-in" for s in steps)
    assert all(any("edge call failed" in m for m in e["errors"]) for e in episodes)
    # Running again resumes: nothing new is played.
    assert main(argv) == 0
    assert len((out_dir / "episodes.jsonl").read_text().splitlines()) == 2
