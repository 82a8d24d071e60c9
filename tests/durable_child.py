"""Child process of the durable-run tests: plays one long episode with checkpoints, slowly.

``python durable_child.py OUT DELAY [CHECKPOINT]``: CHECKPOINT is a PostgreSQL URL (default: the
SQLite file ``OUT/checkpoints.sqlite``)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langgraph_hera.evaluation.runner import EpisodeRunner  # noqa: E402
from langgraph_hera.policies import RandomPolicy  # noqa: E402
from tests.conftest import CounterEnv, ScriptedChat  # noqa: E402

GOAL = 30


class Slow(ScriptedChat):
    delay: float = 0.0

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        time.sleep(self.delay)
        return super()._generate(messages, stop, run_manager, **kwargs)


def runner(
    out: Path,
    delay: float,
    edge: ScriptedChat,
    cloud: ScriptedChat,
    checkpoint: str | None = None,
) -> EpisodeRunner:
    return EpisodeRunner(
        env_factory=lambda: CounterEnv(goal=GOAL),
        edge=edge,
        cloud_factory=lambda env: cloud,
        policy_factory=lambda: RandomPolicy(0.5, seed=1),
        out_dir=out,
        checkpoint_path=checkpoint or out / "checkpoints.sqlite",
        max_steps=GOAL + 10,
    )


def kill_after(args: list[str], checkpoints: Callable[[], int], at: int, **popen: Any) -> None:
    """Run this script with ``args`` and SIGKILL it once ``checkpoints()`` reaches ``at`` (~3
    checkpoints per step: env, router, model). Fails if it ends first or makes no progress."""
    proc = subprocess.Popen([sys.executable, __file__, *args], **popen)
    try:
        deadline = time.monotonic() + 120
        while checkpoints() < at:
            assert proc.poll() is None, "the child ended before it was killed"
            assert time.monotonic() < deadline, "the child made no progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


if __name__ == "__main__":
    out = Path(sys.argv[1])
    slow = float(sys.argv[2])
    models = Slow(script=["inc"], delay=slow), Slow(script=["inc"], name_="gpt-4o", delay=slow)
    runner(out, slow, *models, checkpoint=sys.argv[3] if len(sys.argv) > 3 else None).run([0])
