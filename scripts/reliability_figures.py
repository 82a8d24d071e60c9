"""The figures of docs/RELIABILITY.md: budget-cap violations over many random episodes, and
steps lost / repeated over repeated SIGKILL-and-resume cycles.

    .venv/bin/python scripts/reliability_figures.py --episodes 300 --kills 5

Uses the scripted models and the counter game of the test suite (graph logic, real SQLite
checkpoints, real child processes killed with SIGKILL).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langgraph_hera import CostLedger, HeraContext, create_text_agent  # noqa: E402
from langgraph_hera.accounting.pricing import GPT_4O  # noqa: E402
from tests.conftest import CostlyChat, CounterEnv, ScriptedChat, TargetsPolicy  # noqa: E402
from tests.durable_child import GOAL, Slow, runner  # noqa: E402


def budgets(episodes: int, seed: int) -> dict:
    rng = random.Random(seed)
    calls = violations_usd = violations_calls = blocked = 0
    for _ in range(episodes):
        sizes = [rng.randint(1, 5000) for _ in range(rng.randint(1, 8))]
        targets = [rng.choice(["edge", "cloud"]) for _ in range(rng.randint(1, 12))]
        cap_usd = rng.choice([None, rng.uniform(0, 0.05)])
        cap_calls = rng.choice([None, rng.randint(0, 6)])
        estimate = (max(sizes) * GPT_4O.input + 3 * GPT_4O.output) / 1e6
        agent = create_text_agent(
            edge=ScriptedChat(script=["look"]),
            cloud=CostlyChat(script=["inc", "look"], name_="gpt-4o", sizes=sizes),
            policy=TargetsPolicy(targets),
        )
        ctx = HeraContext(
            env=CounterEnv(goal=50),
            max_steps=15,
            cloud_budget_usd=cap_usd,
            max_cloud_calls=cap_calls,
            cloud_call_usd_estimate=estimate,
        )
        out = agent.invoke({"seed": 0}, {"recursion_limit": 500}, context=ctx)
        ledger = CostLedger(out["ledger"])
        calls += ledger.cloud_calls
        blocked += sum("reached" in d["reason"] for d in out["route_log"])
        violations_calls += cap_calls is not None and ledger.cloud_calls > cap_calls
        violations_usd += cap_usd is not None and ledger.cloud_usd > cap_usd + 1e-12
    return {
        "episodes": episodes,
        "cloud_calls": calls,
        "steps_blocked_by_a_cap": blocked,
        "usd_cap_violations": violations_usd,
        "call_cap_violations": violations_calls,
    }


def _checkpoints(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    except sqlite3.Error:
        return 0


def durable(kills: int, seed: int) -> dict:
    rng = random.Random(seed)
    lost = repeated = resumed = 0
    failures: list[dict] = []
    child = ROOT / "tests" / "durable_child.py"
    for _ in range(kills):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            # Kill at a random checkpoint (about 3 per step), up to two times in a row.
            for _ in range(rng.randint(1, 2)):
                target = _checkpoints(out / "checkpoints.sqlite") + rng.randint(3, 40)
                proc = subprocess.Popen([sys.executable, str(child), str(out), "0.03"])
                deadline = time.monotonic() + 120
                while _checkpoints(out / "checkpoints.sqlite") < target:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
            (result,) = runner(out, 0.0, Slow(script=["inc"]), Slow(script=["inc"])).run([0])
            steps = [
                json.loads(line)["step"] for line in (out / "steps.jsonl").read_text().splitlines()
            ]
            lost += len(set(range(GOAL)) - set(steps))
            repeated += len(steps) - len(set(steps))
            resumed += result.success
            if not result.success or sorted(steps) != list(range(GOAL)):
                failures.append(
                    {"steps": steps, "error": result.error, "errors": result.errors[:3]}
                )
    return {
        "kill_resume_runs": kills,
        "succeeded": resumed,
        "steps_lost": lost,
        "steps_repeated": repeated,
        "failures": failures,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.time()
    if args.episodes:
        print(json.dumps({"budgets": budgets(args.episodes, args.seed)}))
    print(json.dumps({"durable": durable(args.kills, args.seed)}))
    print(json.dumps({"wall_s": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
