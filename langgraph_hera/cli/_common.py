"""What the ``hera`` sub-commands share: error lines, argument checks, the edge and cloud models,
progress bars."""

from __future__ import annotations

import argparse
import os
import sys
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
    try:
        _game_params(args)
    except ValueError as exc:
        return str(exc)
    return None


def _game_params(args: argparse.Namespace) -> str | None:
    """``--game-param KEY=VALUE`` (repeatable) as the suite's full parameter string, checked
    like ``make_env(suite, game_params=...)`` does; ``None`` when none was given.

    Raises:
        ValueError: A malformed item, an unknown key (the message lists the allowed keys and
            ranges) or a value out of range; any key for a suite without game parameters.
    """
    items = list(getattr(args, "game_param", None) or [])
    if not items:
        return None
    from langgraph_hera.envs.twx import TWX_PARAMS, parse_game_params

    if args.suite not in TWX_PARAMS:
        raise ValueError(
            f"--game-param: suite {args.suite!r} takes no game parameters "
            f"(suites that do: {', '.join(TWX_PARAMS)})"
        )
    for item in items:
        if "=" not in item:
            raise ValueError(f"--game-param must look like KEY=VALUE, got {item!r}")
    return parse_game_params(args.suite, ",".join(items))


def _env_factory(args: argparse.Namespace) -> Any:
    """Makes the suite's environment with the ``--game-param`` values."""
    from langgraph_hera.envs import make_env

    params = _game_params(args)
    kwargs = {"game_params": params} if params else {}
    return lambda: make_env(args.suite, **kwargs)


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
        self.shape: Any = None  # the served model's size and KV shape, when known

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

            label = Path(args.model).name if args.model else "the embedded SmolLM2-135M-Instruct"
            print(f"starting the edge model ({label}) ...", file=sys.stderr)
            self.server = EdgeServer(
                args.model,
                backend=args.backend,
                adapter=_adapter_arg(args.adapter),
                max_model_len=getattr(args, "max_model_len", 2048),
            )
            self.server.start()
            base_url, model_name = self.server.base_url, self.server.model_name
            self.shape = self.server.model_shape
        if self.shape is None and args.model:
            from langgraph_hera.models._weights import model_shape

            try:  # --edge-url with --model: the served model's files describe it
                self.shape = model_shape(args.model)
            except (ValueError, OSError):
                pass
        backend = getattr(self.server, "backend", "edge")
        about = self.shape.describe() if self.shape else "size unknown: SmolLM2-135M's assumed"
        print(f"edge: {backend} at {base_url} ({model_name}; {about})", file=sys.stderr)
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
    def edge_params(self) -> float:
        """Parameters N of the served edge model (the edge energy estimate)."""
        from langgraph_hera.accounting.ledger import DEFAULT_EDGE_PARAMS

        return float(self.shape.n_params) if self.shape else DEFAULT_EDGE_PARAMS

    @property
    def edge_health(self) -> Any:
        return self.server.is_alive if self.server else None

    def cloud_factory(self, env: Any) -> Any:
        from langgraph_hera.envs import ExpertChatModel

        if not self.stand_in:
            from langchain_openai import ChatOpenAI

            return ChatOpenAI(model=self.args.cloud_model, temperature=0, max_completion_tokens=32)
        return ExpertChatModel(
            expert=env.expert_action,
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


def _int_list(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None


def _say(line: str) -> None:
    print(line, file=sys.stderr)
