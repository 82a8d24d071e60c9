"""``hera supervise``: an adapter over `langgraph_hera.evaluation.supervision_bench`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from langgraph_hera.cli._common import (
    _check_run_args,
    _env_factory,
    _fail,
    _int_list,
    _Models,
    _with_point_progress,
)


def _supervise(args: argparse.Namespace) -> int:
    from langgraph_hera.envs import FOLD_SEEDS
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
            executor_prompt_layout=args.executor_history,
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

    supervisor_llm = None
    if models.cloud_chat is not None:  # the local LLM stand-in supervises too
        supervisor_llm = models.cloud_chat.model_copy(update={"max_tokens": 300})

    def supervisor_factory(env: Any) -> Any:
        if supervisor_llm is not None:
            return supervisor_llm
        if models.kind == "openai":
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
        env_factory=_env_factory(args),
        edge=models.edge,
        cloud_factory=models.cloud_factory,
        supervisor_factory=supervisor_factory,
        edge_supervisor=edge_supervisor,
        max_steps=args.max_steps,
        concurrency=args.concurrency,
        cloud_is_stand_in=models.stand_in,
        edge_kv_dims=models.edge_kv_dims,
        edge_label=models.edge_label,
        runner_kwargs={
            "edge_params": models.edge_params,
            "pricing": models.pricing,
            "cloud_label": models.run_label,
        },
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
