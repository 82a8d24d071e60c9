"""Durable runs: a run killed with SIGKILL mid-episode resumes from its last completed step."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.durable_child import GOAL, Slow, kill_after, runner

CHILD = Path(__file__).resolve().parents[1] / "durable_child.py"


def _checkpoints(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkilled_run_resumes_without_losing_or_repeating_steps(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # Kill somewhere past step 10.
    kill_after([str(out), "0.05"], lambda: _checkpoints(out / "checkpoints.sqlite"), 35)
    assert not (out / "episodes.jsonl").exists()  # it really died mid-episode

    edge, cloud = Slow(script=["inc"]), Slow(script=["inc"], name_="gpt-4o")
    (result,) = runner(out, 0.0, edge, cloud).run([0])
    assert result.success and result.error is None
    # Every step exactly once, in order, across the two processes.
    steps = [json.loads(line)["step"] for line in (out / "steps.jsonl").read_text().splitlines()]
    assert steps == list(range(GOAL))
    assert result.steps == GOAL and result.edge_steps + result.cloud_steps == GOAL
    # One ledger entry per step: 11 prompt + 3 output tokens each, nothing counted twice.
    assert result.edge_tokens + result.cloud_tokens == GOAL * 14
    # The second process resumed mid-episode instead of starting over.
    assert 0 < edge.calls + cloud.calls < GOAL - 5


def test_kills_at_random_points_never_lose_or_repeat_a_step(tmp_path: Path) -> None:
    """Kill twice at random checkpoints, six times over (a kill between a node's saved writes
    and the step's checkpoint once made the resume think the episode had ended)."""
    import random

    rng = random.Random(7)
    for run in range(6):
        out = tmp_path / f"run{run}"
        for _ in range(2):
            target = _checkpoints(out / "checkpoints.sqlite") + rng.randint(3, 40)
            proc = subprocess.Popen([sys.executable, str(CHILD), str(out), "0.02"])
            deadline = time.monotonic() + 120
            while _checkpoints(out / "checkpoints.sqlite") < target and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
        (result,) = runner(out, 0.0, Slow(script=["inc"]), Slow(script=["inc"])).run([0])
        lines = (out / "steps.jsonl").read_text().splitlines()
        assert result.success, f"run {run}: {result}"
        assert [json.loads(line)["step"] for line in lines] == list(range(GOAL)), f"run {run}"


def test_durable_flag_takes_an_optional_postgres_url(tmp_path: Path, capsys) -> None:
    import pytest

    from langgraph_hera.cli import _checkpoint_target, build_parser

    parser = build_parser()
    url = "postgresql://hera:secret@db:5432/runs"
    assert parser.parse_args(["run"]).durable is False
    assert parser.parse_args(["run", "--durable", "--episodes", "2"]).durable is True
    assert parser.parse_args(["record", "--durable", url]).durable == url
    assert _checkpoint_target(False, tmp_path) is None
    assert _checkpoint_target(True, tmp_path) == tmp_path / "checkpoints.sqlite"
    assert _checkpoint_target(url, tmp_path) == url
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--durable", "mysql://root:hunter2@db/x"])
    err = capsys.readouterr().err
    assert "expected a PostgreSQL URL" in err and "hunter2" not in err
