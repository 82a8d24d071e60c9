"""The ``hera`` command: ``hera serve`` (edge server) and ``hera run`` (routed episodes)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STAND_IN = "expert stand-in (not a cloud model)"


def _fail(message: str) -> int:
    print(f"hera: error: {message}", file=sys.stderr)
    return 2


def _policy_kwargs(pairs: Sequence[str]) -> dict[str, Any]:
    """``k=v`` pairs from ``--policy-arg``; numbers parsed as numbers."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--policy-arg must look like key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = int(value)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


def _serve(args: argparse.Namespace) -> int:
    from langgraph_hera.models import EdgeServer

    server = EdgeServer(
        args.model,
        backend=args.backend,
        port=args.port,
        host=args.host,
        allow_remote=args.allow_remote,
    )
    print(f"starting the edge server ({args.backend}) ...", file=sys.stderr)
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


def _run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from langgraph_hera.envs import FOLD_SEEDS, SUITES, ExpertChatModel, make_env
    from langgraph_hera.evaluation.runner import EpisodeRunner, summarize
    from langgraph_hera.models import edge_chat_model
    from langgraph_hera.policies import get_policy

    if args.suite not in SUITES:
        return _fail(f"unknown suite {args.suite!r}; available: {', '.join(SUITES)}")
    if args.episodes < 1:
        return _fail(f"--episodes must be >= 1, got {args.episodes}")
    if args.max_steps < 1:
        return _fail(f"--max-steps must be >= 1, got {args.max_steps}")
    if args.concurrency < 1:
        return _fail(f"--concurrency must be >= 1, got {args.concurrency}")
    if not 0.0 <= args.epsilon <= 1.0:
        return _fail(f"--epsilon must be in [0, 1], got {args.epsilon}")
    try:
        kwargs = _policy_kwargs(args.policy_arg)
        get_policy(args.policy, **kwargs)  # validate before starting anything
    except (ValueError, TypeError) as exc:
        return _fail(str(exc))
    seeds = list(FOLD_SEEDS[args.fold])[args.offset : args.offset + args.episodes]

    server = None
    if args.edge_url:
        base_url, model_name = args.edge_url, args.edge_model
        if not model_name:
            return _fail("--edge-model is required with --edge-url (the served model name)")
    else:
        from langgraph_hera.models import EdgeServer

        print("starting the embedded edge model (SmolLM2-135M-Instruct) ...", file=sys.stderr)
        server = EdgeServer(args.model, backend=args.backend)
        try:
            server.start()
        except Exception as exc:
            return _fail(f"could not start the edge server: {exc}")
        base_url, model_name = server.base_url, server.model_name
        print(f"edge: {server.backend} at {base_url} ({model_name})", file=sys.stderr)

    edge = edge_chat_model(base_url, model_name, max_tokens=24, timeout=args.edge_timeout)
    api_key = os.environ.get("OPENAI_API_KEY")
    stand_in = not (args.cloud_model and api_key)

    def cloud_factory(env: Any) -> Any:
        if not stand_in:
            from langchain_openai import ChatOpenAI

            return ChatOpenAI(model=args.cloud_model, temperature=0, max_completion_tokens=32)
        return ExpertChatModel(
            oracle=env.expert_action,
            valid_actions=lambda: list(getattr(env, "valid_actions", [])),
            epsilon=args.epsilon,
        )

    cloud_label = STAND_IN if stand_in else args.cloud_model
    print(f"cloud: {cloud_label}", file=sys.stderr)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.out or f"runs/{args.suite}-{args.fold}-{args.policy}-{stamp}")
    runner = EpisodeRunner(
        env_factory=lambda: make_env(args.suite),
        edge=edge,
        cloud_factory=cloud_factory,
        policy_factory=lambda: get_policy(args.policy, **kwargs),
        max_steps=args.max_steps,
        concurrency=args.concurrency,
        out_dir=out_dir,
        cloud_is_stand_in=stand_in,
        edge_health=server.is_alive if server else None,
    )
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} episodes"),
            TimeRemainingColumn(),
        ) as progress:
            task = progress.add_task(f"{args.suite} / {args.policy}", total=len(seeds))
            results = runner.run(seeds, on_episode=lambda _: progress.advance(task))
    finally:
        if server is not None:
            server.stop()
    s = summarize(results)
    rows = [
        ("cloud", cloud_label),
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
    title = f"hera run: {args.suite} {args.fold}, policy {args.policy}"
    _table(rows, title)
    print(f"steps: {out_dir / 'steps.jsonl'}  episodes: {out_dir / 'episodes.jsonl'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from langgraph_hera.policies import available_policies

    parser = argparse.ArgumentParser(prog="hera", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the edge model (OpenAI-compatible) until stopped")
    serve.add_argument("--backend", default="auto", choices=["auto", "vllm", "llamacpp"])
    serve.add_argument("--model", default=None, help="model dir or .gguf (default: embedded)")
    serve.add_argument("--port", type=int, default=None, help="default: a free port")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--allow-remote", action="store_true", help="allow binding a non-loopback host"
    )
    serve.set_defaults(func=_serve)

    run = sub.add_parser("run", help="routed episodes on a suite; prints the results table")
    run.add_argument("--suite", default="twc")
    run.add_argument("--fold", default="dev", choices=["train", "dev", "test"])
    run.add_argument("--episodes", type=int, default=5)
    run.add_argument("--offset", type=int, default=0, help="skip this many seeds of the fold")
    run.add_argument(
        "--policy", default="threshold", help=f"one of: {', '.join(available_policies())}"
    )
    run.add_argument(
        "--policy-arg", action="append", default=[], metavar="K=V", help="policy keyword"
    )
    run.add_argument("--max-steps", type=int, default=30)
    run.add_argument("--concurrency", type=int, default=2)
    run.add_argument("--edge-url", default=None, help="an OpenAI-compatible /v1 URL")
    run.add_argument("--edge-model", default=None, help="served model name at --edge-url")
    run.add_argument("--edge-timeout", type=float, default=120.0)
    run.add_argument("--backend", default="auto", choices=["auto", "vllm", "llamacpp"])
    run.add_argument("--model", default=None, help="edge model to serve (default: embedded)")
    run.add_argument(
        "--cloud-model", default=None, help="e.g. gpt-4o (needs OPENAI_API_KEY); default: stand-in"
    )
    run.add_argument("--epsilon", type=float, default=0.0, help="stand-in's random-action rate")
    run.add_argument(
        "--out",
        default=None,
        help="output dir (default: runs/SUITE-FOLD-POLICY-TIME); an existing one is resumed",
    )
    run.set_defaults(func=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
