"""What the ``hera`` sub-commands share: error lines, argument checks, the edge and cloud models,
progress bars."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

STAND_IN = "expert stand-in (not a cloud model)"
#: ``--cloud`` values: ``auto`` (local-llm with --cloud-url / --cloud-model-path, openai with
#: --cloud-model and OPENAI_API_KEY, else expert), ``expert`` (the game's planner as a chat model),
#: ``openai`` (a real cloud model), ``local-llm`` (a local LLM standing in for a cloud model).
CLOUD_KINDS = ("auto", "expert", "openai", "local-llm")
#: The list price a local LLM stand-in is charged at by default (`accounting.pricing.LIST_PRICES`).
DEFAULT_LOCAL_LLM_PRICE = "gpt-4o-mini"


def local_llm_label(name: str) -> str:
    """What a local LLM cloud stand-in is called in every output, from its served name or file:
    ``"local LLM stand-in for a cloud model (Qwen2.5-Coder-1.5B)"``."""
    import re

    stem = Path(name).name.lower().removesuffix(".gguf")
    m = re.search(r"qwen2\.5-coder-(\d+(?:\.\d+)?)b", stem)
    pretty = f"Qwen2.5-Coder-{m.group(1)}B" if m else Path(name).name
    return f"local LLM stand-in for a cloud model ({pretty})"


ADAPTER_HELP = (
    "LoRA adapter dir from `hera adapt`; auto (default): the adapter shipped for the embedded "
    "model; none: the raw model"
)


def _calibrated_path(args: argparse.Namespace, router: str) -> Path:
    """Where ``hera calibrate`` writes: ``--out``, else ``ROUTER-cal.npz`` beside the router
    (both modes: the input is never overwritten unless ``--out`` names it).

    Raises:
        ValueError: The shipped router without ``--out`` (the package's file stays as is).
    """
    if args.out:
        return Path(args.out)
    if router == "shipped":
        raise ValueError("give --out for the shipped router (its file is not overwritten)")
    path = Path(router)
    return path.with_name(f"{path.stem}-cal.npz")


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
    problem = _check_cloud_args(args)
    if problem:
        return problem
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


def cloud_kind(args: argparse.Namespace) -> str:
    """The cloud a run plays with: ``expert``, ``openai`` or ``local-llm`` (see `CLOUD_KINDS`)."""
    kind = getattr(args, "cloud", "auto") or "auto"
    if kind != "auto":
        return str(kind)
    if getattr(args, "cloud_url", None) or getattr(args, "cloud_model_path", None):
        return "local-llm"
    if getattr(args, "cloud_model", None) and os.environ.get("OPENAI_API_KEY"):
        return "openai"
    return "expert"


def _check_cloud_args(args: argparse.Namespace) -> str | None:
    """The first problem with the ``--cloud*`` arguments, or ``None``."""
    from langgraph_hera.accounting.pricing import LIST_PRICES

    kind = cloud_kind(args)
    url, path = getattr(args, "cloud_url", None), getattr(args, "cloud_model_path", None)
    if kind == "local-llm":
        if bool(url) == bool(path):
            return (
                "--cloud local-llm needs one of --cloud-url URL (with --cloud-model NAME, a "
                "running OpenAI-compatible server) and --cloud-model-path FILE.gguf|DIR"
            )
        if url and not args.cloud_model:
            return "--cloud-model is required with --cloud-url (the served model name)"
        if path and not Path(path).exists():
            return f"--cloud-model-path: no such file or directory: {path}"
    elif url or path:
        return f"--cloud-url / --cloud-model-path need --cloud local-llm (got --cloud {kind})"
    if kind == "openai" and not args.cloud_model:
        return "--cloud openai needs --cloud-model NAME (and OPENAI_API_KEY)"
    price = getattr(args, "cloud_price_as", None)
    if price and price.lower() not in LIST_PRICES:
        return f"--cloud-price-as {price!r} is not a listed price; listed: {', '.join(LIST_PRICES)}"
    return None


class _Models:
    """The edge (a given URL, or an EdgeServer started here) and the cloud: the expert
    stand-in, a real cloud model, or a local LLM standing in for a cloud model (a given URL, or
    an EdgeServer started here for it), with its label, prices and prompt layout."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server: Any = None
        self.edge: Any = None
        self.cache: Any = None
        self.kind = cloud_kind(args)
        self.stand_in = self.kind == "expert"  # the expert stand-in: costs no model time
        self.cloud_server: Any = None
        self.cloud_chat: Any = None  # the chat model of an LLM cloud, shared by every episode
        self.cloud_name: str | None = None  # its served name (local-llm)
        if self.kind == "local-llm":
            source = args.cloud_model or args.cloud_model_path or args.cloud_url
            self.cloud_name = args.cloud_model
            self.model_label = getattr(args, "cloud_label", None) or local_llm_label(source)
            self.cloud_label = f"{self.model_label}, priced at the {self.price_note}"
        elif self.kind == "openai":
            self.model_label = self.cloud_label = args.cloud_model
        else:
            self.model_label, self.cloud_label = "expert stand-in", STAND_IN
        self.shape: Any = None  # the served model's size and KV shape, when known
        self.edge_name: str | None = None  # the edge's served name, set by `start`

    @property
    def price_as(self) -> str:
        """The listed model whose price the cloud is charged at (local-llm)."""
        return str(getattr(self.args, "cloud_price_as", None) or DEFAULT_LOCAL_LLM_PRICE).lower()

    @property
    def price_note(self) -> str | None:
        """How the cloud is priced, for tables and reports: the stated list price."""
        from langgraph_hera.accounting.pricing import LIST_PRICES

        if self.kind != "local-llm":
            return None
        p = LIST_PRICES[self.price_as]
        per_m = f"{p.input:g} / {p.output:g} USD per 1M input / output tokens"
        return f"{self.price_as} list price ({per_m})"

    @property
    def pricing(self) -> Any:
        """`Pricing` of the run: the shipped list prices, plus the local LLM's served name
        charged at ``--cloud-price-as``; ``None`` (the default prices) for the other clouds."""
        from langgraph_hera.accounting.pricing import LIST_PRICES, Pricing

        if self.kind != "local-llm" or not self.cloud_name:
            return None
        return Pricing(prices={**LIST_PRICES, self.cloud_name.lower(): LIST_PRICES[self.price_as]})

    @property
    def run_label(self) -> str | None:
        """What the results call the cloud (``EpisodeRunner.cloud_label``): the stand-ins'
        labels; ``None`` for a real cloud model (named in the ledger)."""
        if self.kind == "local-llm":
            return self.model_label
        return "expert stand-in" if self.stand_in else None

    @property
    def cloud_prompt_layout(self) -> str:
        """``--cloud-prompt-layout``; ``auto``: ``episode`` for an LLM cloud, else the edge's."""
        layout = getattr(self.args, "cloud_prompt_layout", "auto") or "auto"
        if layout != "auto":
            return str(layout)
        if self.kind in ("local-llm", "openai"):
            return "episode"
        return str(getattr(self.args, "prompt_layout", "window") or "window")

    def resolve_router(self, policy: str, kwargs: dict[str, Any], suite: str) -> dict[str, Any]:
        """``kwargs`` of ``policy`` with ``path=shipped`` (the ``hera`` default) replaced by the
        router shipped for the served edge on ``suite`` (`shipped_router`), said on stderr.

        Raises:
            ValueError: That file does not load (named; e.g. missing from this installation).
        """
        from langgraph_hera.policies import get_policy

        if policy != "hera" or kwargs.get("path") != "shipped":
            return kwargs
        resolved = {**kwargs, "path": str(self.shipped_router(suite))}
        try:
            get_policy(policy, **resolved)
        except (ValueError, TypeError, OSError) as exc:
            raise ValueError(f"the shipped router {resolved['path']}: {exc}") from exc
        return resolved

    def shipped_router(self, suite: str) -> Path:
        """The shipped router for the served edge on ``suite`` (`shipped_router`); said on
        stderr, with whom it was trained for when that is not this edge on this suite."""
        from langgraph_hera.policies.hera import SHIPPED_ROUTERS, shipped_router

        path = shipped_router(self.edge_name, suite)
        edge, trained_on = next(k for k, v in SHIPPED_ROUTERS.items() if v == path)
        this_edge = edge == (self.edge_name or "").lower()
        if this_edge and trained_on == suite:
            print(f"router: {path.name} (shipped for this edge on {suite})", file=sys.stderr)
        elif this_edge:
            print(
                f"router: {path.name} (shipped for this edge on {trained_on}; none on {suite})",
                file=sys.stderr,
            )
        else:
            print(
                f"router: {path.name} (shipped for {edge} on {trained_on}, not for the served "
                f"edge {self.edge_name}: train one for it with `hera train` and pass "
                "--policy-arg path=FILE)",
                file=sys.stderr,
            )
        return path

    def bench_config(self, seeds: Sequence[int], out_dir: Path, **extra: Any) -> Any:
        """The `BenchConfig` of ``hera bench`` and ``hera calibrate`` (started models, the
        run's episode options; ``extra``: command-specific fields)."""
        from langgraph_hera.evaluation.bench import BenchConfig

        args = self.args
        return BenchConfig(
            suite=args.suite,
            seeds=list(seeds),
            out_dir=out_dir,
            env_factory=_env_factory(args),
            edge=self.edge,
            cloud_factory=self.cloud_factory,
            max_steps=args.max_steps,
            concurrency=args.concurrency,
            cloud_is_stand_in=self.stand_in,
            edge_health=self.edge_health,
            edge_decoding=args.edge_decoding,
            price_note=self.price_note,
            edge_params=self.edge_params,
            edge_label=self.edge_label,
            **self.runner_kwargs(),
            **extra,
        )

    def runner_kwargs(self) -> dict[str, Any]:
        """`EpisodeRunner` / `BenchConfig` keywords every command passes the same way."""
        return {
            "pricing": self.pricing,
            "prompt_layout": getattr(self.args, "prompt_layout", "window") or "window",
            "cloud_prompt_layout": self.cloud_prompt_layout,
            "cloud_label": self.run_label,
        }

    def _start_cloud(self) -> None:
        """Start (``--cloud-model-path``) or connect to (``--cloud-url``) the local LLM."""
        from langgraph_hera.models import edge_chat_model

        args = self.args
        if self.kind != "local-llm":
            return
        backend = None
        if args.cloud_model_path:
            from langgraph_hera.models import EdgeServer

            print(f"starting the cloud stand-in ({self.model_label}) ...", file=sys.stderr)
            self.cloud_server = EdgeServer(
                args.cloud_model_path,
                backend=args.backend,
                served_model_name=args.cloud_model or None,
                adapter=None,
                max_model_len=getattr(args, "cloud_max_model_len", 4096),
                startup_timeout=1800,
            )
            self.cloud_server.start()
            url, self.cloud_name = self.cloud_server.base_url, self.cloud_server.model_name
            backend = self.cloud_server.backend
        else:
            url = args.cloud_url
        self.cloud_chat = edge_chat_model(
            url,
            str(self.cloud_name),
            max_tokens=getattr(args, "cloud_max_tokens", 32),
            timeout=getattr(args, "cloud_timeout", 600.0),
            max_retries=2,
            backend=backend,
        )
        print(f"cloud: {self.cloud_label} at {url} ({self.cloud_name})", file=sys.stderr)

    def start(self, *, need_edge: bool = True) -> None:
        """Start (or connect to) the models; whatever started is stopped again on a failure."""
        try:
            self._start(need_edge=need_edge)
        except BaseException:
            self.stop()
            raise

    def _start(self, *, need_edge: bool) -> None:
        from langgraph_hera.models import edge_chat_model

        args = self.args
        self._start_cloud()
        if not need_edge:
            # Every step goes to the cloud and nobody asks the edge: no server to start.
            self.edge = _NoEdge()
            print(f"cloud: {self.cloud_label} (no edge model needed)", file=sys.stderr)
            return
        if args.edge_url:
            from langgraph_hera.models._server import served_model_shape

            base_url, model_name = args.edge_url, args.edge_model
            # A server on this machine (`hera serve`) says where its weights are.
            self.shape = None if args.model else served_model_shape(base_url, model_name)
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
        self.edge_name = model_name
        if self.shape is None and args.model:
            from langgraph_hera.models._weights import model_shape

            try:  # --edge-url with --model: the served model's files describe it
                self.shape = model_shape(args.model)
            except (ValueError, OSError):
                pass
        backend = getattr(self.server, "backend", "edge")
        print(f"edge: {backend} at {base_url} ({self.edge_label})", file=sys.stderr)
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
            self.server = None
        if self.cloud_server is not None:
            self.cloud_server.stop()
            self.cloud_server = None
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
    def edge_kv_dims(self) -> tuple[int, int, int] | None:
        """Layers, KV heads and head dimension of the served edge model (the KV-cache
        estimate); ``None`` when unknown (the estimates then assume SmolLM2-135M's)."""
        return self.shape.kv_dims if self.shape else None

    @property
    def edge_label(self) -> str:
        """What the outputs call the edge: its served name and the served model's shape, e.g.
        ``"qwen2.5-0.5b-instruct; 494.0M params, 24 layers x 2 KV heads x 64"``."""
        about = self.shape.describe() if self.shape else "size unknown: SmolLM2-135M's assumed"
        return f"{self.edge_name or 'edge'}; {about}"

    @property
    def edge_health(self) -> Any:
        return self.server.is_alive if self.server else None

    def cloud_factory(self, env: Any) -> Any:
        from langgraph_hera.envs import ExpertChatModel

        if self.cloud_chat is not None:
            return self.cloud_chat
        if self.kind == "openai":
            from langchain_openai import ChatOpenAI

            return ChatOpenAI(model=self.args.cloud_model, temperature=0, max_completion_tokens=32)
        return ExpertChatModel(
            expert=env.expert_action,
            valid_actions=lambda: list(getattr(env, "valid_actions", [])),
            epsilon=self.args.epsilon,
        )


def _progress(unit: str = "episodes") -> Any:
    """A progress display: done/total ``unit``, failed episodes, and the time elapsed.

    No time-remaining estimate: episodes of one run take from seconds to many minutes (a short
    win against a ``--max-steps`` loop of slow model calls), so an ETA extrapolated from the
    first ones misleads. The failed count comes from `_episode_callback` (tasks added without
    it show none).
    """
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class FailedColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            failed = task.fields.get("failed")
            if failed is None:
                return Text("")
            return Text(f"{failed} failed", style="red" if failed else "dim")

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn(f"{{task.completed}}/{{task.total}} {unit}"),
        FailedColumn(),
        TimeElapsedColumn(),
    )


def _episode_callback(progress: Any, task: Any) -> Callable[[Any], None]:
    """An ``on_episode`` callback for ``task`` of a `_progress` display: one more done, and one
    more failed when the episode raised (``EpisodeResult.error``, the table's failed episodes)."""
    failed = 0
    progress.update(task, failed=failed)

    def on_episode(result: Any) -> None:
        nonlocal failed
        failed += getattr(result, "error", None) is not None
        progress.update(task, advance=1, failed=failed)

    return on_episode


def _with_point_progress(points: Sequence[Any], total: int, run: Any) -> None:
    """``run(on_episode)`` with one progress bar per point (``point.label``).

    The points are played one after the other: each bar's clock starts when the point before it
    is done (the first at once), so its elapsed time is that point's own.
    """
    with _progress() as progress:
        tasks = [progress.add_task(p.label, total=total, start=False) for p in points]
        index = {p.label: i for i, p in enumerate(points)}
        callbacks = [_episode_callback(progress, t) for t in tasks]
        if tasks:
            progress.start_task(tasks[0])

        def advance(point: Any, result: Any) -> None:
            i = index[point.label]
            progress.start_task(tasks[i])
            callbacks[i](result)
            if progress.tasks[i].finished and i + 1 < len(tasks):
                progress.start_task(tasks[i + 1])

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
