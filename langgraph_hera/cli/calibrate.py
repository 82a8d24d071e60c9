"""``hera calibrate``: a router's threshold offline on replayed dev traces (``--traces``, in
`langgraph_hera.cli.traces`) or in the closed loop on played train / dev episodes
(``--thresholds``): an adapter over `langgraph_hera.evaluation.calibration`."""

from __future__ import annotations

import argparse
import functools
import hashlib
import math
import sys
from pathlib import Path
from typing import Any

from langgraph_hera.cli._common import (
    _calibrated_path,
    _check_run_args,
    _fail,
    _Models,
    _with_point_progress,
)
from langgraph_hera.cli.traces import _calibrate as _calibrate_traces

#: Options of the offline (``--traces``) calibration only.
_TRACE_ONLY = (("cloud_share", "--cloud-share"), ("cloud_usd_share", "--cloud-usd-share"))


def _calibrate(args: argparse.Namespace) -> int:
    """``hera calibrate``: ``--traces`` (offline) or ``--thresholds`` (closed loop)."""
    if args.traces is not None and args.thresholds is not None:
        return _fail(
            "give --traces (offline, on replayed dev traces) or --thresholds (closed loop, on "
            "played dev episodes), not both"
        )
    if args.traces is not None:
        if args.router is None:
            return _fail("--router is required with --traces")
        return _calibrate_traces(args)
    from langgraph_hera.evaluation.calibration import check_fold

    try:  # a test fold is refused first: it is wrong whatever else is given
        check_fold(args.fold)
    except ValueError as exc:
        return _fail(str(exc))
    if args.thresholds is None:
        return _fail(
            "give --thresholds T1,T2,... (closed loop: each played on dev episodes against "
            "always-cloud) or --traces DIR (offline, on replayed dev traces)"
        )
    return _calibrate_episodes(args)


def _float_list(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated numbers, got {text!r}") from None


def _router_arg(args: argparse.Namespace) -> str:
    """The router file: ``--router`` or ``--policy-arg path=FILE`` (the only policy argument
    calibrate takes: the threshold is what it chooses).

    Raises:
        ValueError: Neither or two different files, or another policy argument.
    """
    from langgraph_hera.policies.base import parse_policy_kwargs

    kwargs = parse_policy_kwargs(args.policy_arg, what="--policy-arg")
    other = sorted(set(kwargs) - {"path"})
    if other:
        raise ValueError(
            f"--policy-arg {other[0]}=... is not taken by hera calibrate (allowed: path=FILE; "
            "the threshold is what it chooses, from --thresholds)"
        )
    path = kwargs.get("path")
    if path is not None and args.router is not None and str(path) != args.router:
        raise ValueError(
            f"two routers given: --router {args.router} and --policy-arg path={path}; give one"
        )
    router = args.router if args.router is not None else path
    if router is None:
        raise ValueError("give the router to calibrate: --router or --policy-arg path=ROUTER.npz")
    return str(router)


def _bench_dir(args: argparse.Namespace, router_path: Path) -> Path:
    """``--bench-dir``, else one per suite, fold and router *contents* (a retrained router
    with the same name does not resume the old one's episodes)."""
    if args.bench_dir:
        return Path(args.bench_dir)
    digest = hashlib.sha256(router_path.read_bytes()).hexdigest()[:8]
    return Path(f"runs/calibrate-{args.suite}-{args.fold}-{router_path.stem}-{digest}")


def _calibrate_episodes(args: argparse.Namespace) -> int:
    from langgraph_hera.envs import FOLD_SEEDS
    from langgraph_hera.evaluation.calibration import (
        calibrate_router,
        calibration_points,
    )

    for dest, flag in _TRACE_ONLY:
        if getattr(args, dest, None) is not None:
            return _fail(f"{flag} needs --traces (the closed loop takes --thresholds)")
    problem = _check_run_args(args)
    if problem:
        return _fail(problem)
    try:
        thresholds = _float_list(args.thresholds, "--thresholds")
        router = _router_arg(args)
        out = _calibrated_path(args, router)
        seeds = list(FOLD_SEEDS[args.fold])[args.offset : args.offset + args.episodes]
        points_of = functools.partial(
            calibration_points,
            fold=args.fold,
            thresholds=thresholds,
            min_success_ratio=args.min_success_ratio,
            seeds=seeds,
        )
        points = points_of(router)  # checked before any server starts
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    models = _Models(args)
    try:
        models.start()
    except Exception as exc:
        return _fail(f"could not start the edge server: {exc}")
    try:  # "shipped": the router shipped for the served edge on this suite
        resolved = models.resolve_router("hera", {"path": router}, args.suite)["path"]
        if resolved != router:
            router, points = resolved, points_of(resolved)
    except (ValueError, FileNotFoundError) as exc:
        models.stop()
        return _fail(str(exc))
    config = models.bench_config(seeds, _bench_dir(args, Path(router)))
    done: list[Any] = []
    try:
        _with_point_progress(
            points,
            len(seeds),
            lambda cb: done.append(
                calibrate_router(
                    router,
                    config=config,
                    fold=args.fold,
                    thresholds=thresholds,
                    out=out,
                    min_success_ratio=args.min_success_ratio,
                    on_episode=cb,
                )
            ),
        )
    finally:
        models.stop()
    (result,) = done
    _print_table(result, models.cloud_label)
    print(f"episodes: {result.bench_dir}")
    if result.chosen is None:
        print(
            f"hera calibrate: no threshold reached {result.min_success_ratio:.0%} of "
            f"always-cloud's success ({result.cloud.success:.1%}, so at least "
            f"{result.required_success:.1%}) on these {len(result.seeds)} {result.fold} "
            "episodes; nothing written (try lower thresholds or a lower --min-success-ratio)",
            file=sys.stderr,
        )
        return 1
    c = result.chosen
    print(
        f"chosen: threshold {c.threshold:g} (the file's was {result.threshold_before:.4g}): "
        f"success "
        f"{c.success:.1%} >= {result.min_success_ratio:g} x always-cloud's "
        f"{result.cloud.success:.1%}, cloud USD {c.cloud_usd:.5f} "
        f"({_pct(result.usd_saved(c))} saved vs always-cloud)"
    )
    print(f"router: {result.out}")
    return 0


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.1%}"


def _print_table(result: Any, cloud_label: str) -> None:
    """The per-threshold table as Markdown (as ``hera bench`` prints its report): a terminal
    table of seven columns would be cut at 80 characters."""
    cloud = result.cloud
    lines = [
        f"hera calibrate: {result.suite} {result.fold}, {len(result.seeds)} episodes, keep >= "
        f"{result.min_success_ratio:g} x always-cloud's success",
        "",
        "| threshold | success | % of cloud-only | cloud-step share | cloud USD | "
        "USD saved vs always-cloud | failed |",
        "|---|---|---|---|---|---|---|",
        f"| always-cloud | {cloud.success:.1%} | 100.0% | 100.0% | {cloud.cloud_usd:.5f} | - | "
        f"{cloud.failed_episodes} |",
    ]
    for r in result.rows:
        mark = " (chosen)" if r is result.chosen else ""
        lines.append(
            f"| {r.threshold:g}{mark} | {r.success:.1%} | {_pct(result.pct_of_cloud(r))} | "
            f"{r.cloud_share:.1%} | {r.cloud_usd:.5f} | {_pct(result.usd_saved(r))} | "
            f"{r.failed_episodes} |"
        )
    print("\n".join(lines))
    print(f"\ncloud: {cloud_label}")
