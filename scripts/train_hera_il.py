"""Train Hera's stage-1 (imitation) router on ``hera record --also-edge`` step records.

Splits the episodes by seed into train / val, compares feature sets (embedding only, scalars
only, both, + the edge proposal) and classifiers (logistic regression, one-hidden-layer MLP) on
val (AUC, accuracy, balanced accuracy at p >= 0.5; recall of needs-cloud states and edge share of
agreeing states at a target cloud share), optionally with K-fold cross-validation over episodes,
for one or more embedders; measures the decision latency per step (``router.decide``,
featurisation included, cold embedding cache), then saves the chosen router.

Examples (the second: the replay-label comparison in docs/BENCHMARKS.md):
    .venv/bin/python scripts/train_hera_il.py --data runs/record-twc-train/steps.jsonl \\
        --out /tmp/hera_il.npz --cloud-share 0.5 --cv 5 \\
        --embedders hashed-256,sentence-transformers/all-MiniLM-L6-v2
    .venv/bin/python scripts/train_hera_il.py --data runs/record-twc-train-v4 \\
        --data runs/record-twc-train-v4b --val-data runs/record-twc-dev-v4 --labels replay \\
        --embedders hashed-128 --out /tmp/hera_il.npz --cloud-share 0.4
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from langgraph_hera.evaluation.trajectory import iter_steps
from langgraph_hera.policies.base import RouteInput, calibrate_threshold
from langgraph_hera.policies.hera import (
    FeatureSpec,
    HeraFeaturizer,
    HeraRouter,
    TrainConfig,
    auc_score,
    imitation_dataset,
)

FULL_TEXT = ("task", "observation", "last_action", "edge_action")
BASE_TEXT = ("task", "observation", "last_action")
EDGE_TEXT = ("edge_action", "last_action+edge_action")  # `hera train`'s default


def variants(model: str) -> dict[str, FeatureSpec]:
    """The feature sets compared (all subsets of the last one)."""
    dim = int(model.split("-")[-1]) if model.startswith("hashed-") else 384
    base = FeatureSpec(text_fields=BASE_TEXT, embedding_model=model, embedding_dim=dim)
    return {
        "scalar-only": replace(base, text_fields=()),
        "embedding-only": replace(base, scalars=False),
        "emb+scalar": base,
        "scalar+edge": replace(base, text_fields=(), edge=True),
        "emb+scalar+edge": replace(base, edge=True),
        "emb(+edge text)+scalar+edge": replace(base, text_fields=FULL_TEXT, edge=True),
        "edge text+scalar+edge": replace(base, text_fields=EDGE_TEXT, edge=True),
        "edge text+scalar+edge+history": replace(
            base, text_fields=EDGE_TEXT, edge=True, edge_history=True
        ),
    }


def superset(model: str) -> FeatureSpec:
    """Every column of every variant (featurised once; variants select columns)."""
    specs = variants(model)
    text = tuple(dict.fromkeys(f for s in specs.values() for f in s.text_fields))
    return replace(specs["emb+scalar"], text_fields=text, edge=True, edge_history=True)


def metrics(y: np.ndarray, p: np.ndarray, share: float) -> dict[str, float]:
    """AUC; accuracy and balanced accuracy at 0.5; recall / edge_ok at a cloud share."""
    pos, pred = y > 0.5, p >= 0.5
    tpr = float(np.mean(pred[pos])) if pos.any() else float("nan")
    tnr = float(np.mean(~pred[~pos])) if (~pos).any() else float("nan")
    cloud = p >= calibrate_threshold(p.tolist(), share)
    return {
        "auc": auc_score(y, p),
        "acc": float(np.mean(pred == pos)),
        "bal_acc": (tpr + tnr) / 2,
        "recall@share": float(np.mean(cloud[pos])) if pos.any() else float("nan"),
        "edge_ok@share": float(np.mean(~cloud[~pos])) if (~pos).any() else float("nan"),
    }


def columns(spec: FeatureSpec, names: list[str]) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[n] for n in spec.names()], dtype=int)


def latency(router: HeraRouter, states: list[RouteInput], limit: int) -> dict[str, float]:
    """Per-step ``decide`` time over ``states`` in episode order, from a cold embedding cache."""
    emb = router.featurizer.embedder if router.spec.text_fields else None
    cache = getattr(emb, "cache", None)
    if cache is not None:
        cache.clear()
    if emb is not None:  # load the model outside the timed loop
        emb.embed(["warm up"])
        if cache is not None:
            cache.clear()
    wall, cpu = [], []
    for ri in states[:limit]:
        w0, c0 = time.perf_counter(), time.process_time()
        router.decide(ri)
        wall.append((time.perf_counter() - w0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    out: dict[str, float] = {"n": len(wall)}
    for key, xs in (("wall", wall), ("cpu", cpu)):
        out[f"{key}_p50_ms"] = float(np.percentile(xs, 50))
        out[f"{key}_p95_ms"] = float(np.percentile(xs, 95))
    if cache is not None:
        out["cache_hit_rate"] = cache.hits / max(cache.hits + cache.misses, 1)
    return out


def episode_folds(seeds: np.ndarray, k: int) -> list[np.ndarray]:
    """Val masks of a K-fold split over episodes (seeds), shuffled with a fixed seed."""
    uniq = np.random.default_rng(0).permutation(sorted(set(seeds.tolist())))
    return [np.isin(seeds, uniq[i::k]) for i in range(k)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", required=True, action="append", help="steps.jsonl / .parquet / run dir(s)"
    )
    ap.add_argument(
        "--val-data",
        action="append",
        default=[],
        help="validation run(s), e.g. dev seeds (default: train seeds >= --val-from-seed)",
    )
    ap.add_argument(
        "--labels",
        default="agree",
        choices=["agree", "replay"],
        help="agree: the edge's action equals the cloud's; replay: its replayed cost "
        "(as `hera train --labels replay`)",
    )
    ap.add_argument("--suite", default="twc", help="the environment replay labels play in")
    ap.add_argument("--out", required=True, help="where to write the router (.npz)")
    ap.add_argument("--val-from-seed", type=int, default=150, help="val = seeds >= this")
    ap.add_argument(
        "--val-frac",
        type=float,
        default=0.25,
        help="when --val-from-seed leaves train or val empty: val = this last share of seeds",
    )
    ap.add_argument(
        "--embedders",
        default="hashed-256",
        help="comma-separated embedding models to compare; the first one is saved "
        "(hashed-<dim> or sentence-transformers/all-MiniLM-L6-v2)",
    )
    ap.add_argument("--hidden", default="0,16", help="comma-separated hidden sizes (0: logreg)")
    ap.add_argument("--activation", default="relu", choices=["relu", "tanh"])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--l2", type=float, default=0.1)
    ap.add_argument("--standardize", default="block", choices=["block", "column"])
    ap.add_argument("--cv", type=int, default=0, help="also K-fold CV over episodes (0: off)")
    ap.add_argument("--variant", default="emb(+edge text)+scalar+edge", help="saved feature set")
    ap.add_argument("--save-hidden", type=int, default=16, help="hidden size of the saved router")
    ap.add_argument("--cloud-share", type=float, default=None, help="calibrate on val to this")
    ap.add_argument("--refit-all", action="store_true", help="refit the saved router on all seeds")
    ap.add_argument("--edge-model", default=None, help="edge model / adapter id, stored")
    ap.add_argument("--cloud-model", default=None, help="cloud model id, stored")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--latency-steps", type=int, default=300)
    ap.add_argument("--report", default=None, help="also write the numbers as JSON here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    embedders = [e for e in args.embedders.split(",") if e]
    if any(not e.startswith("hashed-") for e in embedders):
        import torch

        torch.set_num_threads(args.threads)

    def labelled(paths: list[str]) -> tuple[list[RouteInput], np.ndarray, np.ndarray]:
        records = [r for p in paths for r in iter_steps(p)]
        if args.labels == "agree":
            return imitation_dataset(records)
        from langgraph_hera.envs import make_env
        from langgraph_hera.policies.hera_rl import replay_labels

        rl = replay_labels(records, lambda: make_env(args.suite))
        return rl.states, rl.labels, rl.seeds

    states, y, seeds = labelled(args.data)
    if not states:
        print(f"no labelled steps (with 'agree') in {args.data}", file=sys.stderr)
        return 1
    val_mask = seeds >= args.val_from_seed
    if args.val_data:
        v_states, v_y, v_seeds = labelled(args.val_data)
        states, y, seeds = (
            states + v_states,
            np.concatenate([y, v_y]),
            np.concatenate([seeds, v_seeds]),
        )
        val_mask = np.arange(len(states)) >= len(states) - len(v_states)
    uniq = sorted(set(seeds.tolist()))
    if val_mask.all() or not val_mask.any():
        cut = uniq[min(int(round(len(uniq) * (1 - args.val_frac))), len(uniq) - 1)]
        print(f"--val-from-seed {args.val_from_seed} leaves a fold empty: val = seeds >= {cut}")
        val_mask = seeds >= cut
    tr, va = np.flatnonzero(~val_mask), np.flatnonzero(val_mask)
    print(
        f"{len(states)} states from {len(uniq)} episodes; train {len(tr)} states "
        f"({len(set(seeds[tr].tolist()))} seeds), val {len(va)} "
        f"({len(set(seeds[va].tolist()))} seeds); needs-cloud share train "
        f"{y[tr].mean():.3f} val {y[va].mean():.3f}"
    )
    share = args.cloud_share if args.cloud_share is not None else float(y[tr].mean())
    cfg = TrainConfig(epochs=args.epochs, lr=args.lr, l2=args.l2, standardize=args.standardize)
    hiddens = [int(h) for h in args.hidden.split(",") if h != ""]
    folds = episode_folds(seeds, args.cv) if args.cv > 1 else []

    def fit(spec: FeatureSpec, h: int, x: np.ndarray, yy: np.ndarray) -> HeraRouter:
        r = HeraRouter(spec=spec, hidden=h, activation=args.activation)
        return r.fit_features(x, yy, config=cfg)

    results: dict[str, dict[str, float]] = {}
    lp = np.array([ri.edge_logprob if ri.edge_logprob is not None else 0.0 for ri in states])
    results["baseline: 1 - p(edge proposal)"] = metrics(y[va], 1 - np.exp(lp[va]), share)
    if folds:
        results["baseline: 1 - p(edge proposal)"]["cv_auc"] = auc_score(y, 1 - np.exp(lp))
    latencies: dict[str, dict[str, float]] = {}
    saved: HeraRouter | None = None
    for emb_i, model in enumerate(embedders):
        specs = variants(model)
        if args.variant not in specs:
            print(f"--variant {args.variant!r}: one of {', '.join(specs)}", file=sys.stderr)
            return 2
        every = superset(model)
        t0 = time.perf_counter()
        x_all = HeraFeaturizer(every).transform(states)
        print(f"{model}: featurised {len(states)} states in {time.perf_counter() - t0:.1f} s")
        names = every.names()
        for vname, spec in specs.items():
            cols = columns(spec, names)
            x = x_all[:, cols]
            for h in hiddens:
                if not spec.text_fields and emb_i > 0:
                    continue  # the same as for the first embedder
                t0 = time.perf_counter()
                r = fit(spec, h, x[tr], y[tr])
                m = metrics(y[va], r.predict_features(x[va]), share)
                m["fit_s"] = time.perf_counter() - t0
                if folds:
                    p_cv = np.zeros(len(y))
                    for vm in folds:
                        p_cv[vm] = fit(spec, h, x[~vm], y[~vm]).predict_features(x[vm])
                    m["cv_auc"] = auc_score(y, p_cv)
                kind = "logreg" if h == 0 else f"mlp{h}"
                emb_name = "" if not spec.text_fields else f" [{model.split('/')[-1]}]"
                results[f"{vname}{emb_name} / {kind}"] = m
                print(f"  {vname}{emb_name} / {kind}: auc {m['auc']:.3f}", flush=True)
        spec = specs[args.variant]
        cols = columns(spec, names)
        fit_idx = np.arange(len(states)) if args.refit_all else tr
        router = HeraRouter(
            spec=spec,
            hidden=args.save_hidden,
            activation=args.activation,
            edge_model=args.edge_model,
            cloud_model=args.cloud_model,
        ).fit_features(x_all[fit_idx][:, cols], y[fit_idx], config=cfg)
        val_p = router.predict_features(x_all[va][:, cols])
        if args.cloud_share is not None:
            router.threshold = calibrate_threshold(val_p.tolist(), args.cloud_share)
        latencies[model] = latency(router, [states[i] for i in va], args.latency_steps)
        if emb_i == 0:
            router.info.update(
                {
                    "data": str(args.data),
                    "train_seeds": sorted(set(seeds[fit_idx].tolist())),
                    "val_metrics": metrics(y[va], val_p, share),
                    "variant": args.variant,
                    "latency": latencies[model],
                }
            )
            saved = router

    keys = ["auc", "cv_auc", "acc", "bal_acc", "recall@share", "edge_ok@share", "fit_s"]
    print(f"\nval metrics ({len(va)} states; recall / edge_ok at cloud share {share:.2f})")
    print(f"{'model':58s} " + " ".join(f"{k:>13s}" for k in keys))
    for name, m in results.items():
        print(f"{name:58s} " + " ".join(f"{m.get(k, float('nan')):13.3f}" for k in keys))
    print("\ndecision latency per step (router.decide, featurisation included, cold cache):")
    for model, lat in latencies.items():
        print(f"  {model}: " + ", ".join(f"{k}={v:.3g}" for k, v in lat.items()))
    print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    assert saved is not None
    out = saved.save(args.out)
    print(f"\nsaved {saved!r} to {out} ({out.stat().st_size / 1e3:.0f} kB)")
    if args.report:
        report = {"n_states": len(states), "results": results, "latency": latencies}
        Path(args.report).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
