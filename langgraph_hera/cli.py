"""The ``hera`` command: ``hera serve`` (edge server), ``hera run`` (routed episodes),
``hera record`` (trajectories for training routers) and ``hera bench`` (policies compared)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STAND_IN = "expert stand-in (not a cloud model)"
ADAPTER_HELP = (
    "LoRA adapter dir from `hera adapt`; auto (default): the adapter shipped for the embedded "
    "model; none: the raw model"
)


def _fail(message: str) -> int:
    print(f"hera: error: {message}", file=sys.stderr)
    return 2


def _adapter_arg(value: str) -> str | None:
    """``--adapter``: ``auto`` (the shipped one for the embedded model), ``none``, or a dir."""
    return None if value.lower() == "none" else value


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


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


def _table(rows: list[tuple[str, str]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)


def _check_run_args(args: argparse.Namespace) -> str | None:
    """The first problem with the shared episode arguments, or ``None``."""
    from langgraph_hera.envs import SUITES

    if args.suite not in SUITES:
        return f"unknown suite {args.suite!r}; available: {', '.join(SUITES)}"
    if args.episodes < 1:
        return f"--episodes must be >= 1, got {args.episodes}"
    if args.offset < 0:
        return f"--offset must be >= 0, got {args.offset}"
    if args.max_steps < 1:
        return f"--max-steps must be >= 1, got {args.max_steps}"
    if args.concurrency < 1:
        return f"--concurrency must be >= 1, got {args.concurrency}"
    if not 0.0 <= args.epsilon <= 1.0:
        return f"--epsilon must be in [0, 1], got {args.epsilon}"
    if args.edge_url and not args.edge_model:
        return "--edge-model is required with --edge-url (the served model name)"
    return None


class _NoEdge:
    """Stands where the edge model would be when a run never calls it; fails loudly if it does."""

    def _fail(self, *_: Any, **__: Any) -> Any:
        raise RuntimeError("this run was started without an edge model")

    invoke = ainvoke = bind = _fail


class _Models:
    """The edge (a given URL, or an EdgeServer started here) and the cloud factory."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server: Any = None
        self.edge: Any = None
        self.cache: Any = None
        self.stand_in = not (args.cloud_model and os.environ.get("OPENAI_API_KEY"))
        self.cloud_label = STAND_IN if self.stand_in else args.cloud_model

    def start(self, *, need_edge: bool = True) -> None:
        from langgraph_hera.models import edge_chat_model

        args = self.args
        if not need_edge:
            # Every step goes to the cloud and nobody asks the edge: no server to start.
            self.edge = _NoEdge()
            print(f"cloud: {self.cloud_label} (no edge model needed)", file=sys.stderr)
            return
        if args.edge_url:
            base_url, model_name = args.edge_url, args.edge_model
        else:
            from langgraph_hera.models import EdgeServer

            print("starting the embedded edge model (SmolLM2-135M-Instruct) ...", file=sys.stderr)
            self.server = EdgeServer(
                args.model,
                backend=args.backend,
                adapter=_adapter_arg(args.adapter),
                max_model_len=getattr(args, "max_model_len", 2048),
            )
            self.server.start()
            base_url, model_name = self.server.base_url, self.server.model_name
            print(f"edge: {self.server.backend} at {base_url} ({model_name})", file=sys.stderr)
        if args.proposal_cache:
            from langgraph_hera.models.cache import ProposalCache

            namespace = args.cache_namespace or getattr(self.server, "model_identity", "")
            self.cache = ProposalCache(args.proposal_cache, namespace=namespace)
        self.edge = edge_chat_model(
            base_url,
            model_name,
            max_tokens=24,
            timeout=args.edge_timeout,
            cache=self.cache,
            backend=getattr(self.server, "backend", None),
        )
        print(f"cloud: {self.cloud_label}", file=sys.stderr)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.cache is not None:
            s = self.cache.stats()
            print(
                f"proposal cache: {s['hits']}/{s['lookups']} hits ({s['hit_rate']:.0%}), "
                f"{s['entries']} entries in {self.args.proposal_cache}",
                file=sys.stderr,
            )

    @property
    def edge_health(self) -> Any:
        return self.server.is_alive if self.server else None

    def cloud_factory(self, env: Any) -> Any:
        from langgraph_hera.envs import ExpertChatModel

        if not self.stand_in:
            from langchain_openai import ChatOpenAI

            return ChatOpenAI(model=self.args.cloud_model, temperature=0, max_completion_tokens=32)
        return ExpertChatModel(
            oracle=env.expert_action,
            valid_actions=lambda: list(getattr(env, "valid_actions", [])),
            epsilon=self.args.epsilon,
        )


def _progress() -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} episodes"),
        TimeRemainingColumn(),
    )


def _with_point_progress(points: Sequence[Any], total: int, run: Any) -> None:
    """``run(on_episode)`` with one progress bar per point (``point.label``)."""
    with _progress() as progress:
        tasks = {p.label: progress.add_task(p.label, total=total, start=False) for p in points}

        def advance(point: Any, _: Any) -> None:
            progress.start_task(tasks[point.label])
            progress.advance(tasks[point.label])

        run(advance)


def _postgres_url(value: str) -> str:
    """``--durable URL``: a PostgreSQL URL (the value is not echoed: it may hold a password)."""
    if not value.startswith(("postgresql://", "postgres://")):
        raise argparse.ArgumentTypeError(
            "expected a PostgreSQL URL like postgresql://USER:PASS@HOST:5432/DB "
            "(or no value: OUT/checkpoints.sqlite)"
        )
    return value


def _checkpoint_target(durable: bool | str, out_dir: Path) -> Path | str | None:
    """Where ``--durable`` checkpoints: nowhere, the run's SQLite file, or a PostgreSQL URL."""
    if not durable:
        return None
    return durable if isinstance(durable, str) else out_dir / "checkpoints.sqlite"


def _run(args: argparse.Namespace) -> int:
    from langgraph_hera.envs import FOLD_SEEDS, make_env
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
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.out or f"runs/{args.suite}-{args.fold}-{args.policy}-{stamp}")
    runner = EpisodeRunner(
        env_factory=lambda: make_env(args.suite),
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
    )
    try:
        with _progress() as progress:
            task = progress.add_task(f"{args.suite} / {args.policy}", total=len(seeds))
            results = runner.run(seeds, on_episode=lambda _: progress.advance(task))
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
    parquet = out_dir / "steps.parquet"
    print(f"steps: {out_dir / 'steps.jsonl'}" + (f" (+ {parquet})" if parquet.exists() else ""))
    print(f"episodes: {out_dir / 'episodes.jsonl'}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from langgraph_hera.envs import FOLD_SEEDS, make_env
    from langgraph_hera.evaluation.bench import BenchConfig, bench_points, run_bench, write_report

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
    config = BenchConfig(
        suite=args.suite,
        seeds=seeds,
        out_dir=out_dir,
        env_factory=lambda: make_env(args.suite),
        edge=models.edge,
        cloud_factory=models.cloud_factory,
        max_steps=args.max_steps,
        concurrency=args.concurrency,
        cloud_is_stand_in=models.stand_in,
        edge_health=models.edge_health,
        edge_decoding=args.edge_decoding,
    )
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


def _int_list(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None


def _supervise(args: argparse.Namespace) -> int:
    from langgraph_hera.envs import FOLD_SEEDS, make_env
    from langgraph_hera.evaluation.supervision_bench import (
        SupervisionBench,
        run_supervision_bench,
        supervision_points,
        write_report,
    )
    from langgraph_hera.models import edge_chat_model
    from langgraph_hera.supervision import ExpertSupervisor, expert_plan

    problem = _check_run_args(args)
    if problem:
        return _fail(problem)
    try:
        points = supervision_points(
            [m for m in args.modes.split(",") if m],
            _int_list(args.intervals, "--intervals"),
            monolithic=args.monolithic,
            reverse=_int_list(args.reverse, "--reverse"),
            no_summary=_int_list(args.no_summary, "--no-summary"),
            executor_history=args.executor_history,
            trigger=args.trigger,
        )
    except ValueError as exc:
        return _fail(str(exc))
    seeds = list(FOLD_SEEDS[args.fold])[args.offset : args.offset + args.episodes]
    out_dir = Path(args.out or f"runs/supervise-{args.suite}-{args.fold}")
    models = _Models(args)
    try:
        models.start()
    except Exception as exc:
        return _fail(f"could not start the edge server: {exc}")

    def supervisor_factory(env: Any) -> Any:
        if not models.stand_in:
            from langchain_openai import ChatOpenAI

            return ChatOpenAI(model=args.cloud_model, temperature=0, max_completion_tokens=300)
        return ExpertSupervisor(planner=lambda: expert_plan(env))

    edge_supervisor = None
    if args.reverse:
        server = models.server
        url = server.base_url if server else args.edge_url
        name = server.model_name if server else args.edge_model
        edge_supervisor = edge_chat_model(url, name, max_tokens=200, timeout=args.edge_timeout)
    bench = SupervisionBench(
        seeds=seeds,
        out_dir=out_dir,
        env_factory=lambda: make_env(args.suite),
        edge=models.edge,
        cloud_factory=models.cloud_factory,
        supervisor_factory=supervisor_factory,
        edge_supervisor=edge_supervisor,
        max_steps=args.max_steps,
        concurrency=args.concurrency,
        cloud_is_stand_in=models.stand_in,
    )
    try:
        _with_point_progress(
            points, len(seeds), lambda cb: run_supervision_bench(bench, points, on_episode=cb)
        )
    finally:
        models.stop()
    report = write_report(out_dir)
    print((out_dir / "report.md").read_text())
    print(f"report: {out_dir / 'report.md'}  csv: {out_dir / 'results.csv'}")
    return 0 if report["rows"] else 1


def _profile(args: argparse.Namespace) -> int:
    from langgraph_hera.envs import FOLD_SEEDS, make_env
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
        with _progress() as progress:
            task = progress.add_task(f"profile {args.suite}", total=len(seeds))
            profile = profile_tasks(
                lambda: make_env(args.suite),
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
    if args.base:
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


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _train(args: argparse.Namespace) -> int:
    """``hera train``: arguments -> `langgraph_hera.training.router`, the rollouts through the
    episode runner, the results printed."""
    import asyncio

    from langgraph_hera.envs import FOLD_SEEDS, make_env
    from langgraph_hera.evaluation import EpisodeRunner, iter_steps, summarize
    from langgraph_hera.policies.hera import FeatureSpec, HeraRouter
    from langgraph_hera.training.router import (
        RLConfig,
        fit_imitation,
        label_records,
        run_rl_rounds,
    )

    if args.rounds < 0:
        return _fail(f"--rounds must be >= 0, got {args.rounds}")
    if args.target_cloud_share is not None and not 0 <= args.target_cloud_share <= 1:
        return _fail(f"--target-cloud-share must be in [0, 1], got {args.target_cloud_share}")
    if args.lam < 0 or args.step_cost < 0:
        return _fail(f"--lam and --step-cost must be >= 0, got {args.lam}, {args.step_cost}")
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
        )
        spec = FeatureSpec(
            text_fields=text_fields,
            embedding_model=f"hashed-{dim}" if args.embedder == "hashed" else args.embedder,
            embedding_dim=dim if args.embedder == "hashed" else 384,
            edge=args.edge_features,
            edge_history=args.edge_history and args.edge_features,
        )
        records = [r for d in args.data for r in iter_steps(d)]
        dev = [r for d in args.dev_data for r in iter_steps(d)]
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    bad = sorted({int(r["seed"]) for r in records} - set(FOLD_SEEDS["train"]))
    if bad:
        return _fail(f"--data must hold train seeds only (0-999); found {bad[:5]}")

    def env_factory() -> Any:
        return make_env(args.suite)

    def labelled(recs: list[dict], what: str) -> Any:
        return label_records(
            recs,
            labels=args.labels,
            env_factory=env_factory,
            lam=args.lam,
            step_cost=args.step_cost,
            what=what,
            on_message=_say,
        )

    states, labels = labelled(records, "train")
    if not len(states):
        return _fail("no replayed states in --data (record with `hera record --also-edge`)")
    dev_states, dev_labels = labelled(dev, "dev") if dev else (None, None)
    router = HeraRouter(spec=spec, hidden=args.hidden, edge_model=args.edge_id)
    run = fit_imitation(
        router,
        states,
        labels,
        dev_states=dev_states,
        dev_labels=dev_labels,
        cloud_share=args.target_cloud_share,
    )
    _say(run.report("stage 1 (imitation)"))
    if args.rounds:
        # The imitation-only router too, for the IL vs IL+RL ablation.
        il_path = Path(args.out).with_name(Path(args.out).stem + "-il.npz")
        router.info.update({"rounds": 0, "labels": args.labels, "cloud_share": run.cloud_share})
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
            "rounds": args.rounds,
            "lam": args.lam,
            "step_cost": args.step_cost,
            "labels": args.labels,
            "cloud_share": run.cloud_share,
        }
    )
    path = router.save(args.out)
    print(f"router: {path} (threshold {router.threshold:.3f})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``hera`` argument parser (one sub-command per job; each sets its handler)."""
    from langgraph_hera.policies import available_policies

    parser = argparse.ArgumentParser(prog="hera", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the edge model (OpenAI-compatible) until stopped")
    serve.add_argument("--backend", default="auto", choices=["auto", "vllm", "llamacpp"])
    serve.add_argument("--model", default=None, help="model dir or .gguf (default: embedded)")
    serve.add_argument("--port", type=int, default=None, help="default: a free port")
    serve.add_argument("--adapter", default="auto", help=ADAPTER_HELP)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--allow-remote", action="store_true", help="allow binding a non-loopback host"
    )
    serve.set_defaults(func=_serve)

    def episode_args(p: argparse.ArgumentParser, *, fold: str, policy: bool = True) -> None:
        p.add_argument("--suite", default="twc")
        p.add_argument("--fold", default=fold, choices=["train", "dev", "test"])
        p.add_argument("--episodes", type=int, default=5)
        p.add_argument("--offset", type=int, default=0, help="skip this many seeds of the fold")
        if policy:
            p.add_argument(
                "--policy",
                default="hera",
                help=f"one of: {', '.join(available_policies())} (hera: the shipped router "
                "unless --policy-arg path=FILE)",
            )
            p.add_argument(
                "--policy-arg", action="append", default=[], metavar="K=V", help="policy keyword"
            )
        p.add_argument("--max-steps", type=int, default=30)
        p.add_argument("--concurrency", type=int, default=2)
        p.add_argument("--edge-url", default=None, help="an OpenAI-compatible /v1 URL")
        p.add_argument("--edge-model", default=None, help="served model name at --edge-url")
        p.add_argument("--edge-timeout", type=float, default=120.0)
        p.add_argument("--backend", default="auto", choices=["auto", "vllm", "llamacpp"])
        p.add_argument(
            "--edge-decoding",
            default="choice",
            choices=["choice", "rank", "free"],
            help="choice: the server constrains the edge to the valid actions; rank: the most "
            "likely valid action (vLLM); free: parse the reply",
        )
        p.add_argument("--model", default=None, help="edge model to serve (default: embedded)")
        p.add_argument("--adapter", default="auto", help=ADAPTER_HELP)
        p.add_argument(
            "--cloud-model",
            default=None,
            help="e.g. gpt-4o (needs OPENAI_API_KEY); default: the expert stand-in",
        )
        p.add_argument("--epsilon", type=float, default=0.0, help="stand-in's random-action rate")
        p.add_argument(
            "--proposal-cache",
            default=None,
            metavar="PATH",
            help="SQLite file caching the edge's answers across runs (replay, RL, benches)",
        )
        p.add_argument(
            "--cache-namespace",
            default="",
            help="cache key namespace (default: the served weights' identity)",
        )

    run = sub.add_parser("run", help="routed episodes on a suite; prints the results table")
    episode_args(run, fold="dev")
    run.add_argument(
        "--out",
        default=None,
        help="output dir (default: runs/SUITE-FOLD-POLICY-TIME); an existing one is resumed",
    )
    run.add_argument(
        "--durable",
        nargs="?",
        const=True,
        default=False,
        type=_postgres_url,
        metavar="POSTGRES_URL",
        help="checkpoint every step (OUT/checkpoints.sqlite, or a PostgreSQL database given as "
        "postgresql://USER:PASS@HOST:5432/DB): a killed run resumes mid-episode",
    )
    run.set_defaults(func=_run, also_edge=False)

    record = sub.add_parser(
        "record",
        help="record trajectories (JSONL + Parquet); --also-edge adds the edge's action everywhere",
    )
    episode_args(record, fold="train")
    record.set_defaults(policy="always-cloud")
    record.add_argument(
        "--also-edge",
        action="store_true",
        help="ask the edge model for its action at every state (Hera's replay data)",
    )
    record.add_argument(
        "--out", default=None, help="output dir (default: runs/SUITE-FOLD-POLICY-TIME); resumable"
    )
    record.add_argument(
        "--durable",
        nargs="?",
        const=True,
        default=False,
        type=_postgres_url,
        metavar="POSTGRES_URL",
        help="checkpoint every step (OUT/checkpoints.sqlite, or a PostgreSQL database given as "
        "postgresql://USER:PASS@HOST:5432/DB): a killed run resumes mid-episode",
    )
    record.set_defaults(func=_run)

    bench = sub.add_parser("bench", help="policies side by side vs the oracle frontier")
    episode_args(bench, fold="test", policy=False)
    bench.add_argument(
        "--policies",
        default="random,threshold,task-level",
        help="comma-separated (always-edge and always-cloud are always played)",
    )
    bench.add_argument("--sweep", action="store_true", help="sweep the tunable policies")
    bench.add_argument(
        "--out", default=None, help="bench dir (default: runs/bench-SUITE-FOLD); resumable"
    )
    bench.set_defaults(func=_bench)

    supervise = sub.add_parser(
        "supervise",
        help="supervised agents (PEVR / EVA): an edge executor verified every T_v steps",
    )
    episode_args(supervise, fold="test", policy=False)
    supervise.set_defaults(max_steps=40, concurrency=1)
    supervise.add_argument("--modes", default="pevr", help="comma-separated: pevr, eva")
    supervise.add_argument(
        "--intervals", default="4", help="verification intervals T_v, e.g. 1,2,4,8,16"
    )
    supervise.add_argument(
        "--monolithic",
        action="store_true",
        help="also play the monolithic edge and cloud executors (the baselines)",
    )
    supervise.add_argument(
        "--reverse", default="", help="T_v values of the reverse-role check (edge supervisor)"
    )
    supervise.add_argument(
        "--no-summary", default="", help="T_v values of EVA without summarisation"
    )
    supervise.add_argument(
        "--trigger",
        default=None,
        metavar="POLICY[:K=V...]",
        help="a policy deciding when to verify, e.g. threshold:scorer=stuck:threshold=0.7",
    )
    supervise.add_argument(
        "--executor-history",
        default="messages",
        choices=["messages", "since-reset"],
        help="the executor's context since its last reset: a chat, or one message",
    )
    supervise.add_argument(
        "--max-model-len",
        type=int,
        default=8192,
        help="edge context (the executor's context grows between resets)",
    )
    supervise.add_argument(
        "--out", default=None, help="output dir (default: runs/supervise-SUITE-FOLD); resumable"
    )
    supervise.set_defaults(func=_supervise)

    prof = sub.add_parser(
        "profile", help="profile train tasks for the HERA scheduler (edge/cloud choice trees)"
    )
    episode_args(prof, fold="train", policy=False)
    prof.add_argument("--depth", type=int, default=3, help="depth of each choice tree")
    prof.add_argument("--request-steps", type=int, default=15, help="all-edge/all-cloud cap")
    prof.add_argument(
        "--embedder",
        default="sentence-transformers/all-MiniLM-L6-v2",
        help="SBERT model id, or hashed-<dim>",
    )
    prof.add_argument("--out", required=True, help="scheduler file (.npz)")
    prof.set_defaults(func=_profile)

    adapt = sub.add_parser(
        "adapt", help="LoRA-adapt the edge model to recorded cloud trajectories (train seeds)"
    )
    adapt.add_argument(
        "--data", action="append", required=True, help="a run dir or steps file (repeatable)"
    )
    adapt.add_argument("--out", required=True, help="adapter directory (resumes a checkpoint)")
    adapt.add_argument("--base", default=None, help="base model dir (default: embedded)")
    adapt.add_argument("--steps", type=int, default=60)
    adapt.add_argument("--batch-size", type=int, default=8)
    adapt.add_argument("--lr", type=float, default=1e-3)
    adapt.add_argument("--rank", type=int, default=8)
    adapt.add_argument("--max-len", type=int, default=640)
    adapt.add_argument("--top-layers", type=int, default=10, help="0: adapt every layer")
    adapt.add_argument("--threads", type=int, default=None)
    adapt.add_argument("--save-every", type=int, default=10, help="checkpoint every N steps")
    adapt.add_argument(
        "--bf16",
        default="auto",
        choices=["auto", "on", "off"],
        help="bfloat16 compute (auto: when the CPU has bf16 instructions)",
    )
    adapt.add_argument("--seed", type=int, default=0)
    adapt.set_defaults(func=_adapt)

    train = sub.add_parser(
        "train", help="train the Hera step router: imitation, then cost-aware RL rounds"
    )
    episode_args(train, fold="train", policy=False)
    train.add_argument(
        "--data", action="append", required=True, help="`hera record --also-edge` run(s)"
    )
    train.add_argument("--dev-data", action="append", default=[], help="dev run(s) to calibrate")
    train.add_argument("--out", required=True, help="router file (.npz)")
    train.add_argument("--target-cloud-share", type=float, default=None)
    train.add_argument("--rounds", type=int, default=0, help="RL rounds (0: imitation only)")
    train.add_argument("--lam", type=float, default=0.05, help="price of a cloud call (success)")
    train.add_argument("--explore", type=float, default=0.2, help="decision flip rate")
    train.add_argument("--repeats", type=int, default=2, help="rollouts per seed per round")
    train.add_argument("--rl-weight", type=float, default=1.0)
    train.add_argument("--rollout-dir", default=None)
    train.add_argument(
        "--labels",
        default="replay",
        choices=["replay", "agree"],
        help="replay: the edge may act where its action costs nothing (replayed with the "
        "cloud's expert continuing); agree: where it equals the cloud's (the paper's stage 1)",
    )
    train.add_argument(
        "--step-cost", type=float, default=0.01, help="price of one step (replay labels)"
    )
    train.add_argument(
        "--text-fields",
        default="edge_action,last_action+edge_action",
        help="comma-separated texts to embed (parts: task, observation, last_action, "
        "edge_action; join parts with '+')",
    )
    train.add_argument(
        "--edge-features",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="features of the edge's proposal (edge-first routing); --no-edge-features "
        "routes before the edge is asked (drop edge_action from --text-fields too)",
    )
    train.add_argument(
        "--edge-history",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="features: does the edge's proposal repeat an earlier action or undo the last",
    )
    train.add_argument("--embedder", default="hashed", help="hashed or a MiniLM model id")
    train.add_argument("--hash-dim", type=int, default=128)
    train.add_argument("--hidden", type=int, default=16)
    train.add_argument("--edge-id", default=None, help="edge model/adapter id stored in the file")
    train.set_defaults(func=_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hera`` command; returns the exit status (2 for a bad argument)."""
    parser = build_parser()
    args = parser.parse_args(argv)

    def _terminate(signum: int, _: Any) -> None:
        # SIGTERM unwinds like Ctrl-C: `finally` blocks stop the edge server we started
        # (atexit alone does not run on SIGTERM, which orphaned the vLLM process).
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
