"""The oracle's cloud-step share on a recorded fold, by agreement and by replayed cost.

Reads an ``--also-edge`` recording (the cloud acting, the edge asked at every state, e.g. the
``always-cloud`` point of ``hera bench``) and prints the share of states where an oracle router
must call the cloud: where the edge's action differs from the cloud's (the bench's oracle), and
where it differs at a cost (replayed in the game with the cloud's expert continuing: a harmless
reordering is not a cost). Usage:

    .venv/bin/python scripts/replay_oracle.py runs/bench-twc-test-v4/always-cloud [--suite twc]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np

from langgraph_hera.envs import make_env
from langgraph_hera.evaluation import iter_steps
from langgraph_hera.policies.hera_rl import replay_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run directory (steps.jsonl) recorded with --also-edge")
    parser.add_argument("--suite", default="twc")
    parser.add_argument("--lam", type=float, default=0.05)
    parser.add_argument("--step-cost", type=float, default=0.01)
    parser.add_argument("--out", default=None, help="write the deviations here (JSON)")
    args = parser.parse_args()
    records = [r for r in iter_steps(args.run) if r.get("edge_action") is not None]
    rl = replay_labels(
        records, lambda: make_env(args.suite), lam=args.lam, step_cost=args.step_cost
    )
    n = len(rl.states)
    extra = Counter(d.extra_steps for d in rl.deviations)
    print(f"{args.run}: {n} states of {len({r['seed'] for r in records})} episodes")
    print(f"  edge differs from the cloud: {1 - rl.agreed / n:.1%} (the bench's oracle share)")
    print(f"  edge differs at a cost:      {float(np.mean(rl.labels)):.1%} (replayed)")
    print(
        f"  deviations: harmless {rl.harmless}, costly {rl.costly}, fatal {rl.fatal}; "
        "extra steps: "
        + ", ".join(f"{k}: {v}" for k, v in sorted(extra.items(), key=lambda kv: str(kv[0])))
    )
    if args.out:
        with open(args.out, "w") as f:
            json.dump([d.__dict__ for d in rl.deviations], f)


if __name__ == "__main__":
    main()
