"""``hera serve``, ``hera run``, ``hera record`` and ``hera bench``: adapters over
`EdgeServer`, `EpisodeRunner` and `langgraph_hera.evaluation.bench`."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time
from pathlib import Path
from typing import Any

from langgraph_hera.cli._common import (
    _adapter_arg,
    _check_run_args,
    _checkpoint_target,
    _env_factory,
    _episode_callback,
    _fail,
    _interrupt,
    _Models,
    _progress,
    _table,
    _with_point_progress,
)


def _serve(args: argparse.Namespace) -> int:
    from langgraph_hera.models import EdgeServer

    try:
        server = EdgeServer(
            args.model,
            adapter=_adapter_arg(args.adapter),
            backend=args.backend,
            port=args.port,
            host=args.host,
            allow_remote=args.allow_remote,
        )
    except (ValueError, OSError, RuntimeError) as exc:
        return _fail(str(exc))
    print(f"starting the edge server ({args.backend}) ...", file=sys.stderr)
    # SIGTERM before the server is up must still stop it (and its process group).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.start()
    except KeyboardInterrupt:
        server.stop()
        return 0
    except Exception as exc:
        return _fail(f"the edge server did not start: {exc}")
    with server:
        print(f"backend: {server.backend}", file=sys.stderr)
        print(f"model:   {server.model_name}", file=sys.stderr)
        print(f"log:     {server.log_path}", file=sys.stderr)
        print(server.base_url, flush=True)
        stop = False

        def _stop(*_: Any) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        try:
            while not stop:
                if not server.is_alive():
                    return _fail(f"the edge server died; see its log at {server.log_path}")
                time.sleep(2.0)
        except KeyboardInterrupt:
            pass
    return 0


def _run(args: argparse.Namespace) -> int:
    from langgraph_hera.envs import FOLD_SEEDS
    from langgraph_hera.evaluation.runner import EpisodeRunner, summarize
    from langgraph_hera.policies import get_policy
    from langgraph_hera.policies.base import parse_policy_kwargs

    problem = _check_run_args(args)
    if problem:
        return _fail(problem)
    try:
        kwargs = parse_policy_kwargs(args.policy_arg, what="--policy-arg")
        if args.policy == "hera":
            kwargs.setdefault("path", "shipped")
        get_policy(args.policy, **kwargs)  # validate before starting anything
    except (ValueError, TypeError, FileNotFoundError) as exc:
        return _fail(str(exc))
    seeds = list(FOLD_SEEDS[args.fold])[args.offset : args.offset + args.episodes]
    also_edge = bool(getattr(args, "also_edge", False))
    models = _Models(args)
    try:
        models.start(need_edge=also_edge or args.policy != "always-cloud")
    except Exception as exc:
        return _fail(f"could not start the edge server: {exc}")
    try:
        kwargs = models.resolve_router(args.policy, kwargs, args.suite)
    except ValueError as exc:
        models.stop()
        return _fail(str(exc))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.out or f"runs/{args.suite}-{args.fold}-{args.policy}-{stamp}")
    runner = EpisodeRunner(
        env_factory=_env_factory(args),
        edge=models.edge,
        cloud_factory=models.cloud_factory,
        policy_factory=lambda: get_policy(args.policy, **kwargs),
        max_steps=args.max_steps,
        concurrency=args.concurrency,
        out_dir=out_dir,
        cloud_is_stand_in=models.stand_in,
        edge_health=models.edge_health,
        also_edge=also_edge,
        checkpoint_path=_checkpoint_target(args.durable, out_dir),
        edge_decoding=args.edge_decoding,
        edge_params=models.edge_params,
        **models.runner_kwargs(),
    )
    # The stand-in costs no model time: always-cloud on the same seeds says what routing saved.
    baseline_dir = out_dir.with_name(out_dir.name + "-always-cloud")
    play_baseline = (
        models.stand_in
        and not also_edge
        and args.policy != "always-cloud"
        and not getattr(args, "no_baseline", False)
    )
    baseline: list[Any] = []
    try:
        with _progress() as progress:
            task = progress.add_task(f"{args.suite} / {args.policy}", total=len(seeds))
            results = runner.run(seeds, on_episode=_episode_callback(progress, task))
            if play_baseline:
                task = progress.add_task(f"{args.suite} / always-cloud", total=len(seeds))
                baseline = _always_cloud(runner, baseline_dir).run(
                    seeds, on_episode=_episode_callback(progress, task)
                )
    finally:
        models.stop()
    s = summarize(results)
    rows = [
        ("cloud", models.cloud_label),
        ("episodes", str(s["episodes"])),
        ("success", f"{s['success']:.1%}"),
        ("mean steps", f"{s['mean_steps']:.1f}"),
        ("cloud-step share", f"{s['cloud_share']:.1%}"),
        ("edge tokens", str(s["edge_tokens"])),
        ("cloud tokens", str(s["cloud_tokens"])),
        ("cloud USD (list price)", f"{s['cloud_usd']:.5f}"),
        ("edge energy (J, estimate)", f"{s['edge_energy_j']:.2f}"),
        ("router ms / step", f"{s['router_ms_per_step']:.3f}"),
        ("failed episodes", str(s["failed_episodes"])),
    ]
    if also_edge:
        from langgraph_hera.evaluation import iter_steps, oracle_episodes, oracle_summary

        o = oracle_summary(oracle_episodes(iter_steps(out_dir / "steps.jsonl")))
        rows.append(("edge agrees with executed action", f"{o['agreement']:.1%}"))
    verb = "record" if also_edge else "run"
    _table(rows, f"hera {verb}: {args.suite} {args.fold}, policy {args.policy}")
    print(f"cloud: {models.cloud_label}")  # whole (the table may wrap a long label)
    parquet = out_dir / "steps.parquet"
    print(f"steps: {out_dir / 'steps.jsonl'}" + (f" (+ {parquet})" if parquet.exists() else ""))
    print(f"episodes: {out_dir / 'episodes.jsonl'}")
    if baseline:
        print(_saving_line(s, summarize(baseline)) + f" ({baseline_dir})")
    return 0


def _always_cloud(runner: Any, out_dir: Path) -> Any:
    """The same run with every step on the cloud (resumable in its own directory)."""
    from langgraph_hera.policies import get_policy

    return dataclasses.replace(
        runner,
        policy_factory=lambda: get_policy("always-cloud"),
        out_dir=out_dir,
        checkpoint_path=None,
    )


def _saving_line(routed: dict[str, Any], cloud: dict[str, Any]) -> str:
    """What routing saved against always-cloud on the same seeds, and what it cost in success."""
    saved = 1 - routed["cloud_usd"] / cloud["cloud_usd"] if cloud["cloud_usd"] else 0.0
    return (
        f"routing vs always-cloud: cloud USD {routed['cloud_usd']:.5f} vs "
        f"{cloud['cloud_usd']:.5f} (saved {saved:.1%}); success {routed['success']:.1%} vs "
        f"{cloud['success']:.1%}"
    )


def _with_shipped_router(points: list[Any], models: _Models, suite: str) -> list[Any]:
    """``points`` with the ``hera`` default (``path=shipped``) replaced by the router shipped
    for the served edge on ``suite``: the point's label then names the file; one point per
    label (``hera`` and ``hera:path=<that file>`` are one point).

    Raises:
        ValueError: That file does not load.
    """
    resolved = [
        dataclasses.replace(p, kwargs=models.resolve_router(p.policy, p.kwargs, suite))
        for p in points
    ]
    return list({p.label: p for p in resolved}.values())


def _bench(args: argparse.Namespace) -> int:
    from langgraph_hera.envs import FOLD_SEEDS
    from langgraph_hera.evaluation.bench import bench_points, run_bench, write_report

    problem = _check_run_args(args)
    if problem:
        return _fail(problem)
    try:
        points = bench_points([p for p in args.policies.split(",") if p], sweep=args.sweep)
    except ValueError as exc:
        return _fail(str(exc))
    seeds = list(FOLD_SEEDS[args.fold])[args.offset : args.offset + args.episodes]
    out_dir = Path(args.out or f"runs/bench-{args.suite}-{args.fold}")
    models = _Models(args)
    try:
        models.start()
    except Exception as exc:
        return _fail(f"could not start the edge server: {exc}")
    try:
        points = _with_shipped_router(points, models, args.suite)
    except ValueError as exc:
        models.stop()
        return _fail(str(exc))
    config = models.bench_config(seeds, out_dir, failure_penalty_usd=args.failure_penalty_usd)
    try:
        _with_point_progress(
            points, len(seeds), lambda cb: run_bench(config, points, on_episode=cb)
        )
    finally:
        models.stop()
    report = write_report(out_dir)
    print((out_dir / "report.md").read_text())
    print(f"report: {out_dir / 'report.md'}  csv: {out_dir / 'results.csv'}", end="")
    print(f"  plot: {out_dir / 'pareto.png'}")
    return 0 if report["rows"] else 1
