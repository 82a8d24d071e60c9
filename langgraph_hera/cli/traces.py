"""``hera train --traces``, ``hera calibrate`` and ``hera report``: adapters over
`langgraph_hera.training.tool_router` and `langgraph_hera.evaluation.traces_report` (a router
for any tool-calling agent, from its recorded and replayed traces)."""

from __future__ import annotations

import argparse
from typing import Any

from langgraph_hera.cli._common import _calibrated_path, _fail


def _label_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "embedder": getattr(args, "answer_embedder", "auto"),
        "numeric_strings": bool(getattr(args, "numeric_strings", False)),
    }


def _train_traces(args: argparse.Namespace) -> int:
    from langgraph_hera.policies.features import FeatureSpec
    from langgraph_hera.training.tool_router import default_trace_spec, train_on_traces

    if args.edge_margin:
        return _fail(
            "--edge-margin is a feature of text-action routers (--data); a router trained on "
            "--traces uses the tool-call features (FeatureSpec.tools)"
        )
    share = 0.3 if args.target_cloud_share is None else args.target_cloud_share
    usd_share = args.target_cloud_usd_share
    for name, value in (("--target-cloud-share", share), ("--target-cloud-usd-share", usd_share)):
        if value is not None and not 0 <= value <= 1:
            return _fail(f"{name} must be in [0, 1], got {value}")
    if args.embedder == "hashed":
        spec = FeatureSpec(
            embedding_model=f"hashed-{args.hash_dim}", embedding_dim=args.hash_dim, tools=True
        )
    else:
        spec = default_trace_spec("minilm")
    try:
        run = train_on_traces(
            args.traces,
            dev_traces=args.dev_traces,
            out=args.out,
            target_cloud_share=share,
            target_cloud_usd_share=usd_share,
            spec=spec,
            hidden=args.hidden,
            edge_model=args.edge_id,
            **_label_kwargs(args),
        )
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    print(f"router: {run.path}: {run.summary()}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from langgraph_hera.training.tool_router import calibrate_on_traces

    if (args.cloud_share is None) == (args.cloud_usd_share is None):
        return _fail("give one of --cloud-share and --cloud-usd-share")
    try:
        out = _calibrated_path(args, args.router)
        router = calibrate_on_traces(
            args.router,
            args.traces,
            cloud_share=args.cloud_share,
            cloud_usd_share=args.cloud_usd_share,
            out=out,
            **_label_kwargs(args),
        )
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    print(f"router: {out}: threshold {router.threshold:.4f}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from langgraph_hera.evaluation.traces_report import trace_report

    try:
        report = trace_report(args.traces, args.router, out_dir=args.out, **_label_kwargs(args))
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    print(report.markdown)
    print(f"written: {', '.join(str(p) for p in report.paths.values())}")
    return 0


def add_trace_commands(sub: argparse._SubParsersAction, train: argparse.ArgumentParser) -> None:
    """Add ``--traces`` options to ``hera train`` and the ``calibrate`` / ``report`` commands."""

    def label_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--answer-embedder",
            default="auto",
            choices=["auto", "minilm", "lexical"],
            help="final answers agree at cosine >= 0.7 of these embeddings (auto: MiniLM when "
            "sentence-transformers is installed, else lexical)",
        )
        p.add_argument(
            "--numeric-strings", action="store_true", help='tool arguments "1" and 1 agree'
        )

    train.add_argument(
        "--traces", default=None, help="a replayed trace store (any tool-calling agent)"
    )
    train.add_argument("--dev-traces", default=None, help="trace store to calibrate on")
    train.add_argument(
        "--target-cloud-usd-share",
        type=float,
        default=None,
        help="calibrate to this share of the dev steps' cloud USD (each step weighed by its "
        "cloud call's USD; text-game recordings and --traces alike)",
    )
    label_args(train)

    cal = sub.add_parser(
        "calibrate",
        help="set a router's threshold: offline on replayed dev traces (--traces) or in the "
        "closed loop on played dev episodes (--thresholds)",
    )
    cal.add_argument(
        "--router",
        default=None,
        help="router file (.npz), or shipped: the one shipped for the served edge and --suite "
        "(closed loop, with --out; or --policy-arg path=)",
    )
    cal.add_argument("--traces", default=None, help="replayed dev trace store (offline)")
    cal.add_argument("--cloud-share", type=float, default=None, help="offline (--traces)")
    cal.add_argument("--cloud-usd-share", type=float, default=None, help="offline (--traces)")
    cal.add_argument(
        "--out",
        default=None,
        help="write here (default: with --traces, the --router file itself; in the closed "
        "loop, ROUTER-cal.npz beside it: the router is never overwritten unless --out names it)",
    )
    label_args(cal)
    cal.set_defaults(func=_calibrate)  # the closed loop's options: `cli.parser`

    rep = sub.add_parser(
        "report", help="offline report of a router vs baselines on held-out replayed traces"
    )
    rep.add_argument("--traces", required=True, help="replayed test trace store")
    rep.add_argument("--router", required=True, help="router file (.npz)")
    rep.add_argument("--out", default=None, help="directory for report.md and results.csv")
    label_args(rep)
    rep.set_defaults(func=_report)
