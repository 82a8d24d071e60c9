"""``hera profile``, ``hera adapt`` and ``hera train``: adapters over
`langgraph_hera.training` (scheduler profiling, LoRA, the step router)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from langgraph_hera.cli._common import (
    _check_run_args,
    _env_factory,
    _fail,
    _Models,
    _progress,
    _say,
)


def _profile(args: argparse.Namespace) -> int:
    from langgraph_hera.envs import FOLD_SEEDS
    from langgraph_hera.policies.hera_scheduler import HeraScheduler
    from langgraph_hera.training.profiling import profile_tasks

    problem = _check_run_args(args)
    if problem:
        return _fail(problem)
    if args.fold != "train":
        return _fail(f"profile train tasks only (--fold train), got --fold {args.fold}")
    if args.depth < 1:
        return _fail(f"--depth must be >= 1, got {args.depth}")
    seeds = list(FOLD_SEEDS[args.fold])[args.offset : args.offset + args.episodes]
    models = _Models(args)
    try:
        models.start()
    except Exception as exc:
        return _fail(f"could not start the edge server: {exc}")
    t0 = time.perf_counter()
    try:
        with _progress("tasks") as progress:
            task = progress.add_task(f"profile {args.suite}", total=len(seeds))
            profile = profile_tasks(
                _env_factory(args),
                models.edge,
                seeds,
                depth=args.depth,
                request_steps=args.request_steps,
                on_task=lambda _: progress.advance(task),
            )
    finally:
        models.stop()
    scheduler = HeraScheduler(profile=profile, embedding_model=args.embedder)
    path = scheduler.save(args.out)
    agree = sum(n.edge_action == n.cloud_action for n in profile.nodes) / len(profile.nodes)
    print(
        f"profile: {len(profile.nodes)} tree nodes from {len(seeds)} tasks (depth {args.depth}), "
        f"edge = cloud at {agree:.1%} of nodes, {time.perf_counter() - t0:.0f} s; "
        f"scheduler: {path}"
    )
    return 0


def _adapt(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from langgraph_hera.training.lora import AdaptConfig, examples_from_steps, train_adapter

    try:
        config = AdaptConfig(
            rank=args.rank,
            lr=args.lr,
            steps=args.steps,
            batch_size=args.batch_size,
            max_len=args.max_len,
            seed=args.seed,
            top_layers=args.top_layers or None,
            threads=args.threads,
            save_every=args.save_every,
            bf16=None if args.bf16 == "auto" else args.bf16 == "on",
            device=args.device,
        )
        examples, stats = examples_from_steps(args.data)
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    print(
        f"data: {stats.kept} steps from {stats.episodes} train episodes "
        f"({stats.not_train} non-train steps dropped, {stats.no_cloud_action} without a "
        f"cloud action, {stats.invalid} invalid)",
        file=sys.stderr,
    )
    if args.base and not Path(args.base).exists():
        return _fail(f"--base {args.base}: no such file or directory (a model dir or a .gguf file)")
    if args.base and Path(args.base).is_file():
        from langgraph_hera.models.adapters import convert_gguf

        try:
            base = convert_gguf(args.base)
        except Exception as exc:
            return _fail(f"could not convert {args.base} to a model directory: {exc}")
    elif args.base:
        base = Path(args.base)
    else:
        from langgraph_hera.models.adapters import embedded_model_dir

        try:
            base = embedded_model_dir()
        except Exception as exc:
            return _fail(f"the embedded edge model is not available: {exc}")
    print(f"base: {base}", file=sys.stderr)
    note = {"sources": [str(d) for d in args.data], "episodes": stats.episodes}
    with Progress(
        TextColumn("[bold]adapt"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps  loss {task.fields[loss]}"),
        TimeRemainingColumn(),
    ) as progress:
        task = progress.add_task("adapt", total=config.steps, loss="-")
        try:
            meta = train_adapter(
                base,
                examples,
                args.out,
                config,
                data_note=note,
                on_step=lambda s, loss: progress.update(task, completed=s, loss=f"{loss:.3f}"),
            )
        except (ValueError, ImportError) as exc:
            return _fail(str(exc))
    t = meta["train"]
    print(
        f"adapter: {args.out}  ({config.steps} steps, {t['s_per_step']} s/step this run, "
        f"last-10 loss {t['final_loss_mean_last10']})"
    )
    return 0


def _cloud_price(args: argparse.Namespace) -> Any:
    """The list price of the run's cloud: ``--cloud-price-as``, else gpt-4o-mini for a local
    LLM stand-in, the ``--cloud-model``'s for a real one, GPT-4o for the expert stand-in."""
    from langgraph_hera.accounting.pricing import LIST_PRICES, Pricing
    from langgraph_hera.cli._common import DEFAULT_LOCAL_LLM_PRICE, cloud_kind

    kind = cloud_kind(args)
    if args.cloud_price_as:
        return LIST_PRICES[args.cloud_price_as.lower()]
    if kind == "local-llm":
        return LIST_PRICES[DEFAULT_LOCAL_LLM_PRICE]
    if kind == "openai":
        return Pricing().price(args.cloud_model)
    return LIST_PRICES["gpt-4o"]


def _usd_setup(args: argparse.Namespace) -> tuple[Any, Any] | str:
    """``(UsdObjective, cloud price)`` of ``hera train``, or the first problem with its
    arguments."""
    from langgraph_hera.training.usd import UsdObjective

    if args.rounds < 0:
        return f"--rounds must be >= 0, got {args.rounds}"
    if args.fold != "train":
        return (
            f"hera train plays its RL rollouts on train seeds only (--fold train; --episodes "
            f"and --offset pick them), got --fold {args.fold}"
        )
    if args.target_cloud_share is not None and not 0 <= args.target_cloud_share <= 1:
        return f"--target-cloud-share must be in [0, 1], got {args.target_cloud_share}"
    if args.lam < 0 or args.step_cost < 0:
        return f"--lam and --step-cost must be >= 0, got {args.lam}, {args.step_cost}"
    usd_share, usd_budget = args.target_cloud_usd_share, args.target_cloud_usd_per_episode
    if usd_share is not None and not 0 <= usd_share <= 1:
        return f"--target-cloud-usd-share must be in [0, 1], got {usd_share}"
    if usd_budget is not None and usd_budget < 0:
        return f"--target-cloud-usd-per-episode must be >= 0, got {usd_budget}"
    if sum(x is not None for x in (args.target_cloud_share, usd_share, usd_budget)) > 1:
        return (
            "give at most one of --target-cloud-share, --target-cloud-usd-share and "
            "--target-cloud-usd-per-episode"
        )
    try:
        usd = UsdObjective(
            lam_usd=args.lam_usd,
            step_cost_usd=args.step_cost_usd,
            failure_penalty_usd=args.failure_penalty_usd,
            edge_usd_per_call=args.edge_usd_per_call,
            edge_first=args.edge_features,
        )
    except ValueError as exc:
        return str(exc)
    return usd, _cloud_price(args)


def _objective_line(args: argparse.Namespace, usd: Any, price: Any) -> str:
    if args.objective == "steps":
        return f"objective steps: return - {args.lam:g} x cloud calls - {args.step_cost:g} x steps"
    return (
        f"objective usd: -{usd.lam_usd:g} x (cloud USD + edge USD) - {usd.step_cost_usd:g} USD x "
        f"steps - {usd.failure_penalty_usd:g} USD x unsolved; cloud calls at their state's "
        f"tokens, {price.input:g} / {price.output:g} USD per 1M input / output tokens; edge "
        f"{usd.edge_usd_per_call:g} USD per call"
    )


def _data_problem(args: argparse.Namespace, records: list[dict], dev: list[dict]) -> str | None:
    """Why ``hera train`` cannot train on the ``--data`` records, or None: seeds outside the
    train fold; ``--edge-margin`` without the edge features, or with no recorded margin (the
    feature would be constant: the router could learn nothing from it). Recordings where only
    some proposals (train or dev) lack a margin are said on stderr and trained on (the
    feature's missing flag marks them)."""
    from langgraph_hera.envs import FOLD_SEEDS

    bad = sorted({int(r["seed"]) for r in records} - set(FOLD_SEEDS["train"]))
    if bad:
        return f"--data must hold train seeds only (0-999); found {bad[:5]}"
    if not args.edge_margin:
        return None
    if not args.edge_features:
        return "--edge-margin needs the edge proposal features: drop --no-edge-features"
    for recs, flag in ((records, "--data"), (dev, "--dev-data")):
        proposals = [r for r in recs if r.get("edge_action") is not None]
        with_margin = sum(r.get("edge_margin") is not None for r in proposals)
        if flag == "--data" and not with_margin:
            return (
                f"--edge-margin: none of the {len(proposals)} edge proposals in --data carries "
                "an edge_margin (recorded without --also-edge, before margins were, or by a "
                "server without token logprobs); record with `hera record --also-edge` "
                "(choice or rank decoding), or train without --edge-margin"
            )
        if with_margin < len(proposals):
            _say(
                f"warning: --edge-margin: {len(proposals) - with_margin} of {len(proposals)} "
                f"edge proposals in {flag} carry no edge_margin (marked by the feature's "
                "missing flag)"
            )
    return None


def _train(args: argparse.Namespace) -> int:
    """``hera train``: arguments -> `langgraph_hera.training.router`, the rollouts through the
    episode runner, the results printed."""
    import asyncio

    from langgraph_hera.envs import FOLD_SEEDS
    from langgraph_hera.evaluation import EpisodeRunner, iter_steps, summarize
    from langgraph_hera.policies.hera import FeatureSpec, HeraRouter
    from langgraph_hera.training.router import (
        RLConfig,
        fit_imitation,
        label_records_usd,
        run_rl_rounds,
    )

    if getattr(args, "traces", None):
        from langgraph_hera.cli.traces import _train_traces

        return _train_traces(args)
    if not args.data:
        return _fail("hera train needs --data (text-action recordings) or --traces")
    try:
        env_factory = _env_factory(args)
    except ValueError as exc:
        return _fail(str(exc))
    setup = _usd_setup(args)
    if isinstance(setup, str):
        return _fail(setup)
    usd, price = setup
    usd_share, usd_budget = args.target_cloud_usd_share, args.target_cloud_usd_per_episode
    text_fields = tuple(f.strip() for f in args.text_fields.split(",") if f.strip())
    dim = args.hash_dim
    try:
        config = RLConfig(
            rounds=args.rounds,
            repeats=args.repeats,
            explore=args.explore,
            rl_weight=args.rl_weight,
            labels=args.labels,
            lam=args.lam,
            step_cost=args.step_cost,
            objective=args.objective,
            usd=usd,
            price=price,
        )
        spec = FeatureSpec(
            text_fields=text_fields,
            embedding_model=f"hashed-{dim}" if args.embedder == "hashed" else args.embedder,
            embedding_dim=dim if args.embedder == "hashed" else 384,
            edge=args.edge_features,
            edge_history=args.edge_history and args.edge_features,
            edge_margin=bool(args.edge_margin) and args.edge_features,
        )
        records = [r for d in args.data for r in iter_steps(d)]
        dev = [r for d in args.dev_data for r in iter_steps(d)]
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    problem = _data_problem(args, records, dev)
    if problem:
        return _fail(problem)

    def labelled(recs: list[dict], what: str) -> Any:
        return label_records_usd(
            recs,
            labels=args.labels,
            env_factory=env_factory,
            lam=args.lam,
            step_cost=args.step_cost,
            what=what,
            on_message=_say,
            objective=args.objective,
            usd=usd,
            price=price,
        )

    if args.labels == "replay":
        _say(_objective_line(args, usd, price))
    states, labels, train_usd = labelled(records, "train")
    if not len(states):
        return _fail("no replayed states in --data (record with `hera record --also-edge`)")
    dev_states, dev_labels, dev_usd = labelled(dev, "dev") if dev else (None, None, None)
    if usd_budget is not None:
        episodes = len({(r.get("suite"), r.get("seed")) for r in (dev or records)})
        usd_budget = usd_budget * episodes
    # The edge the router is for: --edge-id, else the served model named by --edge-model.
    edge_id = args.edge_id or (args.edge_model if args.edge_url else None)
    router = HeraRouter(spec=spec, hidden=args.hidden, edge_model=edge_id)
    try:
        run = fit_imitation(
            router,
            states,
            labels,
            dev_states=dev_states,
            dev_labels=dev_labels,
            cloud_share=args.target_cloud_share,
            usd=train_usd,
            dev_usd=dev_usd,
            usd_share=usd_share,
            usd_budget=usd_budget,
        )
    except ValueError as exc:  # e.g. a USD target on recordings without prompts or costs
        return _fail(str(exc))
    _say(run.report("stage 1 (imitation)"))
    if args.rounds:
        # The imitation-only router too, for the IL vs IL+RL ablation.
        il_path = Path(args.out).with_name(Path(args.out).stem + "-il.npz")
        stage1 = {"suite": args.suite, "rounds": 0, "labels": args.labels}
        router.info.update({**stage1, "cloud_share": run.cloud_share})
        _say(f"stage-1 router: {router.save(il_path)}")
        out_dir = Path(args.rollout_dir or Path(args.out).with_suffix(".rollouts"))
        seeds = list(FOLD_SEEDS["train"])[args.offset : args.offset + args.episodes]
        models = _Models(args)
        try:
            models.start()
        except Exception as exc:
            return _fail(f"could not start the edge server: {exc}")

        async def rollout(policy_factory: Any, k: int, rep: int) -> list[dict]:
            rollout_dir = out_dir / f"round-{k}" / f"rep-{rep}"
            runner = EpisodeRunner(
                env_factory=env_factory,
                edge=models.edge,
                cloud_factory=models.cloud_factory,
                policy_factory=policy_factory,
                max_steps=args.max_steps,
                concurrency=args.concurrency,
                out_dir=rollout_dir,
                cloud_is_stand_in=models.stand_in,
                edge_health=models.edge_health,
                edge_params=models.edge_params,
                **models.runner_kwargs(),
            )
            s = summarize(await runner.arun(seeds))
            _say(
                f"round {k} rollout {rep}: success {s['success']:.1%}, "
                f"cloud share {s['cloud_share']:.1%}"
            )
            return list(iter_steps(rollout_dir))

        try:
            # One event loop for every rollout: the chat models' async HTTP clients are bound
            # to the loop that first used them (a new asyncio.run per rollout broke them).
            asyncio.run(
                run_rl_rounds(
                    run, config=config, rollout=rollout, env_factory=env_factory, on_message=_say
                )
            )
        finally:
            models.stop()
    router.info.update(
        {
            "suite": args.suite,
            "rounds": args.rounds,
            "lam": args.lam,
            "step_cost": args.step_cost,
            "labels": args.labels,
            "cloud_share": run.cloud_share,
            "objective": args.objective,
            "usd_objective": dataclasses.asdict(usd) if args.objective == "usd" else None,
            "cloud_price": dataclasses.asdict(price),
            "target_cloud_usd_share": usd_share,
            "target_cloud_usd_budget": usd_budget,
        }
    )
    path = router.save(args.out)
    print(f"router: {path} (threshold {router.threshold:.3f})")
    return 0
