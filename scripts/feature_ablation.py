"""Which router features matter: dev ROC AUC of the Hera router (imitation, stage 1) per spec.

Labels the train and dev states of ``--also-edge`` recordings once, as ``hera train`` does by
default (replayed in the game, USD objective, `UsdObjective()` defaults, GPT-4o list prices),
then fits the router with each feature spec below (3 seeds each) and prints the dev AUC (mean
and standard deviation over the seeds), the difference to the first (shipped) spec with a 95% paired
bootstrap interval over the dev states (2,000 resamples), and the share of dev states the
router must send to the cloud to catch 80 / 90 / 95% of those that need it (lower is better).
First, the AUC of two single signals: the edge's log-probability and its margin. Usage:

    .venv/bin/python scripts/feature_ablation.py --suite twc \
        --data runs/i22/record-twc-train --dev-data runs/i22/record-twc-dev \
        [--labels runs/i22/labels.pkl]   # labels are kept here and reused on the next run

The edge-margin spec needs recordings whose edge proposals carry ``edge_margin`` (recorded
with choice decoding since the margin was added); for older ones the feature is constant.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from langgraph_hera.envs import make_env
from langgraph_hera.evaluation import iter_steps
from langgraph_hera.policies.hera import FeatureSpec, HeraRouter
from langgraph_hera.training.classifier import TrainConfig, auc_score, fit_router
from langgraph_hera.training.router import label_records_usd
from langgraph_hera.training.usd import UsdObjective

HASHED: dict[str, Any] = {"embedding_model": "hashed-128", "embedding_dim": 128}
MINILM: dict[str, Any] = {
    "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
    "embedding_dim": 384,
}
SHIPPED: dict[str, Any] = {
    "text_fields": ("edge_action", "last_action+edge_action"),
    **HASHED,
    "edge": True,
    "edge_history": True,
}
#: name -> FeatureSpec keyword arguments (the first is the shipped routers' spec).
SPECS: dict[str, dict[str, Any]] = {
    "shipped (hera train defaults)": SHIPPED,
    "+ edge margin": {**SHIPPED, "edge_margin": True},
    "- edge history": {**SHIPPED, "edge_history": False},
    "no text": {**SHIPPED, "text_fields": ()},
    "+ observation embedded": {
        **SHIPPED,
        "text_fields": ("edge_action", "last_action+edge_action", "observation"),
    },
    "edge action only (text)": {**SHIPPED, "text_fields": ("edge_action",)},
    "MiniLM instead of hashed": {**SHIPPED, **MINILM},
}


def _labelled(dirs: list[str], suite: str, what: str) -> tuple[list, np.ndarray]:
    records = [r for d in dirs for r in iter_steps(d)]
    states, labels, _ = label_records_usd(
        records,
        labels="replay",
        env_factory=lambda: make_env(suite),
        what=what,
        on_message=print,
        objective="usd",
        usd=UsdObjective(),
    )
    return states, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="twc", help="the recordings' suite (replayed)")
    parser.add_argument("--data", action="append", required=True, help="train recordings")
    parser.add_argument("--dev-data", action="append", required=True, help="dev recordings")
    parser.add_argument("--labels", default=None, help="pickle of the labels (made once)")
    parser.add_argument("--seeds", type=int, default=3, help="fits per spec (init seeds)")
    parser.add_argument(
        "--specs",
        default=None,
        help="'|'-separated spec names (default: all): " + " | ".join(SPECS),
    )
    args = parser.parse_args()
    names = list(SPECS) if args.specs is None else [s.strip() for s in args.specs.split("|")]
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        parser.error(f"unknown spec(s) {unknown}; known: {list(SPECS)}")

    cache = Path(args.labels) if args.labels else None
    if cache is not None and cache.exists():
        (s, y), (ds, dy) = pickle.loads(cache.read_bytes())
    else:
        s, y = _labelled(args.data, args.suite, "train")
        ds, dy = _labelled(args.dev_data, args.suite, "dev")
        if cache is not None:
            cache.write_bytes(pickle.dumps(((s, y), (ds, dy))))
    with_margin = sum(ri.edge_margin is not None for ri in [*s, *ds])
    print(
        f"train {len(s)} states ({y.mean():.1%} need the cloud), dev {len(ds)} "
        f"({dy.mean():.1%}); edge margin present on {with_margin} of {len(s) + len(ds)}"
    )
    need = dy > 0.5
    lp = np.array([-(ri.edge_logprob if ri.edge_logprob is not None else 0.0) for ri in ds])
    margin = np.array([-(ri.edge_margin if ri.edge_margin is not None else 30.0) for ri in ds])
    print(
        f"single signals, dev AUC: edge log-probability {auc_score(need, lp):.3f}, "
        f"edge margin {auc_score(need, margin):.3f}"
    )
    rng = np.random.default_rng(0)
    boot = [rng.integers(0, len(dy), len(dy)) for _ in range(2000)]
    base: np.ndarray | None = None
    print(
        "spec | dev AUC (seeds) | minus the first spec's [95% bootstrap] "
        "| cloud share at 80 / 90 / 95% recall"
    )
    for name in names:
        aucs, probs = [], []
        for seed in range(args.seeds):
            router = HeraRouter(spec=FeatureSpec(**SPECS[name]), hidden=16)
            fit_router(router, s, y, config=TrainConfig(seed=seed))
            p = router.predict_proba(ds)
            probs.append(p)
            aucs.append(auc_score(dy, p))
        p = np.mean(probs, axis=0)
        share = [float(np.mean(p >= np.quantile(p[need], 1 - q))) for q in (0.8, 0.9, 0.95)]
        if base is None:
            base, diff = p, "-"
        else:
            d = [auc_score(dy[i], p[i]) - auc_score(dy[i], base[i]) for i in boot]
            lo, hi = np.nanpercentile(d, [2.5, 97.5])
            diff = f"{auc_score(dy, p) - auc_score(dy, base):+.3f} [{lo:+.3f}, {hi:+.3f}]"
        print(
            f"{name} | {np.mean(aucs):.3f} +- {np.std(aucs):.3f} | {diff} | "
            + " / ".join(f"{x:.0%}" for x in share)
        )


if __name__ == "__main__":
    main()
